/* neigh: ARP/ND neighbour table (RFC 826 merge, aging, re-confirmation: neigh.h), ND/MLD frames. */
#include "controlplane/neigh.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/csum.h"
#include "dataplane/hash.h"

/* ff02::1:ff00:0/104, the solicited-node prefix (RFC 4291 2.7.1). */
static const uint8_t neigh_snm_prefix[13] = {0xff, 0x02, [11] = 0x01, [12] = 0xff};

struct neigh_slot {
	struct addr addr;
	uint8_t used;
	uint8_t state;
	uint8_t wanted;
	uint8_t mac[6];
	uint32_t requests;
	uint64_t confirmed;
	uint64_t next_req; /* ns when the next ARP request is due (INCOMPLETE, or re-confirming) */
};

struct neigh_table {
	struct neigh_slot *slots; /* open addressing, linear probing, backward-shift deletion */
	uint32_t mask;
	uint32_t capacity;
	uint32_t count;
	uint64_t timeout;
	uint64_t retry;
};

static uint32_t neigh_hash(const struct addr *a)
{
	/*
	 * Two 8-byte words and the family, then a full mix: only this table
	 * uses it. (Byte-wise FNV-1a cost 17 multiplies a lookup; a forwarding
	 * state build looks up every backend, tens of thousands of them.)
	 */
	uint64_t h = hash_step(a->family, hash_load_le64(a->b));
	h = hash_step(h, hash_load_le64(a->b + 8));
	return (uint32_t)hash_fmix64(h);
}

static int neigh_addr_ok(const struct addr *a)
{
	return a != NULL && (a->family == ADDR_V4 || a->family == ADDR_V6);
}

static int neigh_mac_ok(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	/* Group bit set = broadcast or multicast: never a neighbour's own address. */
	return memcmp(mac, zero, 6) != 0 && (mac[0] & 1) == 0;
}

struct neigh_table *neigh_create(uint32_t capacity, uint64_t timeout_ns, uint64_t retry_ns)
{
	if (capacity == 0 || capacity > (1u << 20) || timeout_ns == 0 || retry_ns == 0)
		return NULL;
	struct neigh_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	/* At most half full, so probe sequences stay short. */
	uint32_t size = 4;
	while (size < 2 * capacity)
		size <<= 1;
	t->slots = calloc(size, sizeof(*t->slots));
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	t->mask = size - 1;
	t->capacity = capacity;
	t->timeout = timeout_ns;
	t->retry = retry_ns;
	return t;
}

void neigh_destroy(struct neigh_table *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

int neigh_set_timers(struct neigh_table *t, uint64_t timeout_ns, uint64_t retry_ns)
{
	if (timeout_ns == 0 || retry_ns == 0)
		return -EINVAL;
	t->timeout = timeout_ns;
	t->retry = retry_ns;
	return 0;
}

static struct neigh_slot *neigh_find(const struct neigh_table *t, const struct addr *a)
{
	for (uint32_t i = neigh_hash(a) & t->mask;; i = (i + 1) & t->mask) {
		struct neigh_slot *s = &t->slots[i];
		if (!s->used)
			return NULL;
		if (addr_eq(&s->addr, a))
			return s;
	}
}

/* A fresh INCOMPLETE slot for a (not present) address, or NULL when the table is full. */
static struct neigh_slot *neigh_insert(struct neigh_table *t, const struct addr *a)
{
	if (t->count >= t->capacity)
		return NULL;
	uint32_t i = neigh_hash(a) & t->mask;
	while (t->slots[i].used)
		i = (i + 1) & t->mask;
	struct neigh_slot *s = &t->slots[i];
	memset(s, 0, sizeof(*s));
	s->used = 1;
	s->addr = *a;
	s->state = NEIGH_INCOMPLETE;
	t->count++;
	return s;
}

/*
 * Delete by backward shift (Knuth 6.4, algorithm R): later members of the
 * probe run move into the hole so that lookups never need tombstones.
 */
static void neigh_delete(struct neigh_table *t, struct neigh_slot *s)
{
	uint32_t hole = (uint32_t)(s - t->slots);
	uint32_t j = hole;

	for (;;) {
		j = (j + 1) & t->mask;
		struct neigh_slot *n = &t->slots[j];
		if (!n->used)
			break;
		uint32_t home = neigh_hash(&n->addr) & t->mask;
		/* n may fill the hole only if its home is not cyclically within (hole, j]. */
		int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (stays)
			continue;
		t->slots[hole] = *n;
		hole = j;
	}
	memset(&t->slots[hole], 0, sizeof(t->slots[hole]));
	t->count--;
}

/* Make room for a wanted address: forget the least recently confirmed unwanted learned entry. */
static int neigh_evict_unwanted(struct neigh_table *t)
{
	struct neigh_slot *victim = NULL;

	for (uint32_t i = 0; i <= t->mask; i++) {
		struct neigh_slot *s = &t->slots[i];
		if (s->used && !s->wanted && s->state != NEIGH_STATIC &&
		    (victim == NULL || s->confirmed < victim->confirmed))
			victim = s;
	}
	if (victim == NULL)
		return -ENOSPC;
	neigh_delete(t, victim);
	return 0;
}

int neigh_add_static(struct neigh_table *t, const struct addr *a, const uint8_t mac[6])
{
	if (!neigh_addr_ok(a) || !neigh_mac_ok(mac))
		return -EINVAL;
	struct neigh_slot *s = neigh_find(t, a);
	if (s == NULL) {
		s = neigh_insert(t, a);
		if (s == NULL && neigh_evict_unwanted(t) == 0)
			s = neigh_insert(t, a);
		if (s == NULL)
			return -ENOSPC;
	}
	s->state = NEIGH_STATIC;
	memcpy(s->mac, mac, 6);
	s->requests = 0;
	return 0;
}

void neigh_clear_static(struct neigh_table *t)
{
	for (uint32_t i = 0; i <= t->mask; i++) {
		struct neigh_slot *s = &t->slots[i];
		if (!s->used || s->state != NEIGH_STATIC)
			continue;
		if (s->wanted) {
			/* Still needed: resolve it on the wire from now on. */
			s->state = NEIGH_INCOMPLETE;
			memset(s->mac, 0, 6);
			s->next_req = 0;
			continue;
		}
		neigh_delete(t, s);
		i--; /* the shift may have moved an unvisited entry into slot i; wraps to 0 fine */
	}
}

int neigh_set_wanted(struct neigh_table *t, const struct addr *addrs, uint32_t n, uint64_t now)
{
	int rc = 0;

	for (uint32_t i = 0; i < n; i++)
		if (!neigh_addr_ok(&addrs[i]))
			return -EINVAL;
	for (uint32_t i = 0; i <= t->mask; i++)
		t->slots[i].wanted = 0;
	/*
	 * Two passes: first mark the wanted addresses that already have an
	 * entry, then insert the missing ones. In one pass, a missing address
	 * early in the list could evict an entry that a later address wants:
	 * with more wanted addresses than capacity, every call then churned the
	 * table (one whole-table eviction scan per address; 12% of a follower's
	 * CPU under a stream of registrations) and dropped resolved MACs.
	 */
	uint32_t missing = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct neigh_slot *s = neigh_find(t, &addrs[i]);
		if (s != NULL)
			s->wanted = 1;
		else
			missing++;
	}
	for (uint32_t i = 0; i < n && missing > 0; i++) {
		struct neigh_slot *s = neigh_find(t, &addrs[i]);
		if (s != NULL)
			continue; /* marked in the first pass (or a duplicate just inserted) */
		missing--;
		s = neigh_insert(t, &addrs[i]);
		/* An eviction scans the whole table: once it fails, nothing else fits either. */
		if (s == NULL && neigh_evict_unwanted(t) == 0)
			s = neigh_insert(t, &addrs[i]);
		if (s == NULL) {
			rc = -ENOSPC;
			break;
		}
		s->next_req = now;
		s->wanted = 1;
	}
	/* An unresolved address nobody wants any more is not worth asking for. */
	for (uint32_t i = 0; i <= t->mask; i++) {
		struct neigh_slot *s = &t->slots[i];
		if (s->used && !s->wanted && s->state == NEIGH_INCOMPLETE) {
			neigh_delete(t, s);
			i--;
		}
	}
	return rc;
}

int neigh_learn(struct neigh_table *t, const struct addr *a, const uint8_t mac[6], uint64_t now,
		unsigned flags)
{
	if (!neigh_addr_ok(a) || !neigh_mac_ok(mac))
		return -EINVAL;
	struct neigh_slot *s = neigh_find(t, a);
	if (s == NULL) {
		if (!(flags & NEIGH_LEARN_CREATE))
			return 0;
		s = neigh_insert(t, a);
		if (s == NULL)
			return 0; /* full of wanted/static/recent entries: this one can wait */
	}
	if (s->state == NEIGH_STATIC)
		return 0;
	int resolved = s->state == NEIGH_REACHABLE;
	int same = resolved && memcmp(s->mac, mac, 6) == 0;
	/*
	 * RFC 4861 7.2.5: without Override, another MAC for a resolved entry
	 * is not taken. Neither is it a confirmation: the owner is asked again
	 * from half the lifetime on as usual (the RFC's STALE, in effect).
	 */
	if ((flags & NEIGH_LEARN_KEEP) && resolved && !same)
		return 0;
	if (flags & NEIGH_LEARN_UNCONFIRMED) {
		/*
		 * A hint (neigh.h): the same MAC again says nothing new. A new
		 * one is used at once (a backend that moved announces it so
		 * that its flows follow), but the lifetime is not extended: it
		 * was earned by the old MAC, or starts now for an address that
		 * had none. Asking at once (7.3.3's PROBE) confirms the new MAC
		 * within one retry, or lets the entry expire on schedule.
		 */
		if (same)
			return 0;
		if (!resolved)
			s->confirmed = now;
		s->state = NEIGH_REACHABLE;
		memcpy(s->mac, mac, 6);
		s->requests = 0;
		s->next_req = now;
		return s->wanted;
	}
	int changed = !same;
	s->state = NEIGH_REACHABLE;
	memcpy(s->mac, mac, 6);
	s->confirmed = now;
	s->requests = 0;
	/* Re-confirmation starts at half the lifetime (neigh.h). */
	s->next_req = now + t->timeout / 2;
	/* Only a wanted address is in the forwarding state; others need no rebuild. */
	return changed && s->wanted;
}

int neigh_lookup(const struct neigh_table *t, const struct addr *a, uint8_t mac[6])
{
	if (!neigh_addr_ok(a))
		return 0;
	const struct neigh_slot *s = neigh_find(t, a);
	if (s == NULL || s->state == NEIGH_INCOMPLETE)
		return 0;
	memcpy(mac, s->mac, 6);
	return 1;
}

int neigh_tick(struct neigh_table *t, uint64_t now,
	       void (*request)(void *ctx, const struct addr *a), void *ctx, int *lost_v6)
{
	int lost = 0, lost6 = 0;

	for (uint32_t i = 0; i <= t->mask; i++) {
		struct neigh_slot *s = &t->slots[i];
		if (!s->used || s->state == NEIGH_STATIC)
			continue;
		if (s->state == NEIGH_REACHABLE && now - s->confirmed >= t->timeout) {
			if (!s->wanted) {
				neigh_delete(t, s);
				i--;
				continue;
			}
			s->state = NEIGH_INCOMPLETE;
			memset(s->mac, 0, 6);
			s->next_req = now;
			lost++;
			lost6 += s->addr.family == ADDR_V6;
		}
		if (s->wanted && now >= s->next_req) {
			if (request != NULL)
				request(ctx, &s->addr);
			s->requests++;
			s->next_req = now + t->retry;
		}
	}
	if (lost_v6 != NULL)
		*lost_v6 = lost6;
	return lost;
}

uint32_t neigh_count(const struct neigh_table *t)
{
	return t->count;
}

void neigh_foreach(const struct neigh_table *t,
		   void (*fn)(void *ctx, const struct neigh_entry_info *e), void *ctx)
{
	for (uint32_t i = 0; i <= t->mask; i++) {
		const struct neigh_slot *s = &t->slots[i];
		if (!s->used)
			continue;
		struct neigh_entry_info info = {
			.addr = s->addr,
			.state = s->state,
			.wanted = s->wanted,
			.confirmed = s->confirmed,
			.requests = s->requests,
		};
		memcpy(info.mac, s->mac, 6);
		fn(ctx, &info);
	}
}

int neigh_arp_request(uint8_t *frame, uint32_t size, const uint8_t sender_mac[6],
		      const struct addr *sender_ip, const struct addr *target)
{
	if (size < NEIGH_ARP_FRAME_LEN || sender_ip == NULL || target == NULL ||
	    sender_ip->family != ADDR_V4 || target->family != ADDR_V4)
		return -EINVAL;
	memset(frame, 0, NEIGH_ARP_FRAME_LEN);
	memset(frame, 0xff, 6); /* broadcast */
	memcpy(frame + 6, sender_mac, 6);
	frame[12] = 0x08; /* ethertype ARP */
	frame[13] = 0x06;
	uint8_t *arp = frame + 14;
	arp[1] = 1;    /* htype Ethernet */
	arp[2] = 0x08; /* ptype IPv4 */
	arp[4] = 6;    /* hlen */
	arp[5] = 4;    /* plen */
	arp[7] = 1;    /* op request */
	memcpy(arp + 8, sender_mac, 6);
	memcpy(arp + 14, sender_ip->b, 4);
	/* target hardware address stays zero */
	memcpy(arp + 24, target->b, 4);
	return NEIGH_ARP_FRAME_LEN;
}

int neigh_ns_request(uint8_t *frame, uint32_t size, const uint8_t sender_mac[6],
		     const struct addr *sender_ip, const struct addr *target)
{
	struct addr dst;

	if (size < NEIGH_NS_FRAME_LEN || sender_ip == NULL || target == NULL ||
	    sender_ip->family != ADDR_V6 || target->family != ADDR_V6)
		return -EINVAL;
	/* solicited-node multicast: ff02::1:ff00:0/104 plus the target's low 24 bits */
	dst = *target;
	memcpy(dst.b, neigh_snm_prefix, 13);
	memset(frame, 0, NEIGH_NS_FRAME_LEN);
	frame[0] = 0x33; /* its Ethernet group: 33:33 and the address's low 32 bits */
	frame[1] = 0x33;
	memcpy(frame + 2, dst.b + 12, 4);
	memcpy(frame + 6, sender_mac, 6);
	frame[12] = 0x86; /* ethertype IPv6 */
	frame[13] = 0xdd;
	uint8_t *ip = frame + 14, *icmp = ip + 40;
	ip[0] = 0x60;
	ip[5] = 32; /* payload length */
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = 255;
	memcpy(ip + 8, sender_ip->b, 16);
	memcpy(ip + 24, dst.b, 16);
	icmp[0] = 135;
	memcpy(icmp + 8, target->b, 16);
	icmp[24] = 1; /* Source Link-Layer Address, 1 x 8 bytes */
	icmp[25] = 1;
	memcpy(icmp + 26, sender_mac, 6);
	if (csum_l4_fill(sender_ip, &dst, IPPROTO_ICMPV6, icmp, 32) != 0)
		return -EINVAL;
	return NEIGH_NS_FRAME_LEN;
}

/*
 * Walk the options of an ND message (icmp[0 .. mlen), options from byte 24:
 * type, length in units of 8 bytes, value). Returns 0 and sets *found to the
 * value of the last option of type `want` (or NULL), or -EINVAL for an
 * option of length 0 or one that runs past the end (RFC 4861 7.1.1/7.1.2).
 */
static int neigh_nd_option(const uint8_t *icmp, uint32_t mlen, uint8_t want, const uint8_t **found)
{
	*found = NULL;
	for (uint32_t off = 24; off + 2 <= mlen; off += icmp[off + 1] * 8u) {
		if (icmp[off + 1] == 0 || off + icmp[off + 1] * 8u > mlen)
			return -EINVAL;
		if (icmp[off] == want)
			*found = icmp + off + 2;
	}
	return 0;
}

int neigh_nd_parse(const uint8_t *frame, const struct pkt_info *pi, struct addr *who,
		   uint8_t mac[6], unsigned *flags)
{
	static const uint8_t unspecified[16];
	const uint8_t *icmp = frame + pi->l4_off, *lla = NULL;
	uint32_t mlen = pi->l4_len;

	if (pi->l3 != PKT_L3_IPV6 || pi->l4_proto != IPPROTO_ICMPV6 || pi->frag != PKT_FRAG_NONE ||
	    (pi->icmp_type != 135 && pi->icmp_type != 136))
		return -EINVAL;
	if (frame[pi->l3_off + 7] != 255 || pi->icmp_code != 0 || mlen < 24 || icmp[8] == 0xff)
		return -EINVAL;
	/*
	 * The checksum: a corrupted advertisement must not teach a MAC (the
	 * workers do not check it for what they hand over).
	 */
	if (csum_l4_verify(&pi->src, &pi->dst, IPPROTO_ICMPV6, icmp, mlen) != 1)
		return -EINVAL;
	if (neigh_nd_option(icmp, mlen, pi->icmp_type == 135 ? 1 : 2, &lla) != 0)
		return -EINVAL;
	if (pi->icmp_type == 135) {
		if (memcmp(frame + pi->l3_off + 8, unspecified, 16) == 0) {
			/* 7.1.1: a probe goes to a solicited-node group and names no MAC. */
			if (lla != NULL || memcmp(pi->dst.b, neigh_snm_prefix, 13) != 0)
				return -EINVAL;
			return 0; /* a probe: nobody to learn */
		}
		*who = pi->src;
		*flags = NEIGH_ND_OVERRIDE;
	} else {
		/* 7.1.2: an answer goes to its solicitor; one to a group is an announcement. */
		if (pi->dst.b[0] == 0xff && (icmp[4] & 0x40))
			return -EINVAL;
		addr_set_v6(who, icmp + 8);
		/* RFC 4861 4.4: R (0x80), S (0x40), O (0x20) */
		*flags = ((icmp[4] & 0x40) ? NEIGH_ND_SOLICITED : 0u) |
			 ((icmp[4] & 0x20) ? NEIGH_ND_OVERRIDE : 0u);
	}
	if (lla == NULL)
		return 0;
	memcpy(mac, lla, 6);
	return 1;
}

void neigh_nd_target(const uint8_t *frame, const struct pkt_info *pi, struct addr *target)
{
	addr_set_v6(target, frame + pi->l4_off + 8);
}

int neigh_na_reply(uint8_t *frame, uint32_t size, const uint8_t mac[6], const uint8_t *ns,
		   const struct pkt_info *pi)
{
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	static const uint8_t unspecified[16];
	const uint8_t *nsicmp = ns + pi->l4_off, *slla = NULL;
	struct addr src, dst;

	if (size < NEIGH_NA_FRAME_LEN || pi->l3 != PKT_L3_IPV6 || pi->l4_proto != IPPROTO_ICMPV6 ||
	    pi->icmp_type != 135 || pi->l4_len < 24 ||
	    neigh_nd_option(nsicmp, pi->l4_len, 1, &slla) != 0)
		return -EINVAL;
	int dad = memcmp(pi->src.b, unspecified, 16) == 0;
	addr_set_v6(&src, nsicmp + 8);
	/* 7.2.4: to the solicitor; a duplicate-address probe's sender has no address yet. */
	if (dad)
		addr_set_v6(&dst, all_nodes);
	else
		dst = pi->src;
	memset(frame, 0, NEIGH_NA_FRAME_LEN);
	/* Without a Source Link-Layer Address option: the solicitor's frame source MAC. */
	memcpy(frame, dad ? all_nodes_mac : slla != NULL ? slla : ns + 6, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = 0x86;
	frame[13] = 0xdd;
	uint8_t *ip = frame + 14, *icmp = ip + 40;
	ip[0] = 0x60;
	ip[5] = 32;
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = 255;
	memcpy(ip + 8, src.b, 16);
	memcpy(ip + 24, dst.b, 16);
	icmp[0] = 136;
	icmp[4] = (uint8_t)((dad ? 0 : 0x40) | 0x20); /* Solicited (not to a group), Override */
	memcpy(icmp + 8, src.b, 16);
	icmp[24] = 2; /* Target Link-Layer Address, 1 x 8 bytes */
	icmp[25] = 1;
	memcpy(icmp + 26, mac, 6);
	if (csum_l4_fill(&src, &dst, IPPROTO_ICMPV6, icmp, 32) != 0)
		return -EINVAL;
	return NEIGH_NA_FRAME_LEN;
}

/* ---- IPv6 addresses of the node and MLD ---- */

void neigh_link_local(struct addr *ll, const uint8_t mac[6])
{
	uint8_t b[16] = {0xfe, 0x80};

	/* Modified EUI-64: the MAC split by ff:fe, its universal/local bit inverted. */
	b[8] = mac[0] ^ 0x02;
	b[9] = mac[1];
	b[10] = mac[2];
	b[11] = 0xff;
	b[12] = 0xfe;
	b[13] = mac[3];
	b[14] = mac[4];
	b[15] = mac[5];
	addr_set_v6(ll, b);
}

int neigh_is_link_local(const struct addr *a)
{
	return a != NULL && a->family == ADDR_V6 && a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80;
}

int neigh_solicited_node(struct addr *group, const struct addr *a)
{
	static const uint8_t unspecified[16];

	if (a == NULL || a->family != ADDR_V6 || a->b[0] == 0xff ||
	    memcmp(a->b, unspecified, 16) == 0)
		return -EINVAL;
	*group = *a;
	memcpy(group->b, neigh_snm_prefix, 13);
	return 0;
}

int neigh_mld_report(uint8_t *frame, uint32_t size, const uint8_t mac[6], const struct addr *src,
		     enum neigh_mld_record type, const struct addr *groups, uint32_t n)
{
	static const uint8_t all_mldv2_routers[16] = {0xff, 0x02, [15] = 0x16};
	static const uint8_t unspecified[16];
	struct addr dst;

	if (n == 0 || n > NEIGH_MLD_MAX_RECORDS || size < NEIGH_MLD_FRAME_LEN(n) || src == NULL ||
	    src->family != ADDR_V6 ||
	    (!neigh_is_link_local(src) && memcmp(src->b, unspecified, 16) != 0) ||
	    (type != NEIGH_MLD_IS_EX && type != NEIGH_MLD_TO_IN && type != NEIGH_MLD_TO_EX))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (groups[i].family != ADDR_V6 || groups[i].b[0] != 0xff)
			return -EINVAL;
	uint32_t mlen = 8 + 20 * n, len = NEIGH_MLD_FRAME_LEN(n);
	addr_set_v6(&dst, all_mldv2_routers);
	memset(frame, 0, len);
	frame[0] = 0x33; /* 33:33 and the low 32 bits of ff02::16 */
	frame[1] = 0x33;
	memcpy(frame + 2, dst.b + 12, 4);
	memcpy(frame + 6, mac, 6);
	frame[12] = 0x86;
	frame[13] = 0xdd;
	uint8_t *ip = frame + 14, *hbh = ip + 40, *icmp = hbh + 8;
	ip[0] = 0x60;
	ip[4] = (uint8_t)((8 + mlen) >> 8);
	ip[5] = (uint8_t)(8 + mlen);
	ip[6] = 0; /* Hop-by-Hop Options */
	ip[7] = 1; /* RFC 3810 5.2.13: link scope, routers must not forward it */
	memcpy(ip + 8, src->b, 16);
	memcpy(ip + 24, dst.b, 16);
	/*
	 * RFC 3810 5.2.13 / RFC 2711: the Router Alert option (type 5, length
	 * 2, value 0 = MLD) makes routers and snooping switches look at a
	 * packet not addressed to them; a PadN of length 0 fills the header to
	 * its 8 bytes.
	 */
	hbh[0] = IPPROTO_ICMPV6;
	hbh[1] = 0;
	hbh[2] = 5;
	hbh[3] = 2;
	hbh[6] = 1;
	icmp[0] = 143;
	icmp[6] = (uint8_t)(n >> 8);
	icmp[7] = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *r = icmp + 8 + 20 * i;
		r[0] = (uint8_t)type; /* aux data length and number of sources stay 0 */
		memcpy(r + 4, groups[i].b, 16);
	}
	if (csum_l4_fill(src, &dst, IPPROTO_ICMPV6, icmp, mlen) != 0)
		return -EINVAL;
	return (int)len;
}

struct neigh_mld_group {
	struct addr group;
	uint8_t member;	 /* in the current set (else: left, leave reports still pending) */
	uint8_t pending; /* state-change reports still to send for it */
};

struct neigh_mld {
	struct neigh_mld_group *g; /* sorted by group; members and groups being left */
	uint32_t n;
	uint32_t members;
	uint64_t interval;
	uint64_t refresh;
	unsigned robustness;
	uint64_t next_change;  /* when the next state-change report is due (if any is pending) */
	uint64_t next_refresh; /* when the next full report is due (armed once there are members) */
	int armed;
};

struct neigh_mld *neigh_mld_create(uint64_t interval_ns, uint64_t refresh_ns, unsigned robustness)
{
	if (interval_ns == 0 || refresh_ns == 0 || robustness < 1 || robustness > 7)
		return NULL;
	struct neigh_mld *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->interval = interval_ns;
	m->refresh = refresh_ns;
	m->robustness = robustness;
	return m;
}

void neigh_mld_destroy(struct neigh_mld *m)
{
	if (m == NULL)
		return;
	free(m->g);
	free(m);
}

static int neigh_addr_qcmp(const void *x, const void *y)
{
	return addr_cmp(x, y);
}

int neigh_mld_set(struct neigh_mld *m, const struct addr *addrs, uint32_t n, uint64_t now)
{
	struct addr *want = malloc(((size_t)n + 1) * sizeof(*want));
	struct neigh_mld_group *g = malloc(((size_t)n + m->n + 1) * sizeof(*g));
	uint32_t k = 0, ng = 0, members = 0;
	int changed = 0;

	if (want == NULL || g == NULL) {
		free(want);
		free(g);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		if (neigh_solicited_node(&want[k], &addrs[i]) == 0)
			k++;
	qsort(want, k, sizeof(*want), neigh_addr_qcmp);
	/* Merge the sorted, possibly repeating wanted groups with the sorted old list. */
	uint32_t i = 0, j = 0;
	while (i < k || j < m->n) {
		int c = i == k ? 1 : j == m->n ? -1 : addr_cmp(&want[i], &m->g[j].group);
		struct neigh_mld_group *o = &g[ng];
		if (c < 0) { /* joined */
			o->group = want[i];
			o->member = 1;
			o->pending = (uint8_t)m->robustness;
			changed = 1;
		} else if (c > 0) { /* not wanted now */
			*o = m->g[j++];
			if (o->member) {
				o->member = 0;
				o->pending = (uint8_t)m->robustness;
				changed = 1;
			}
			if (o->pending == 0)
				continue; /* left, and said so often enough */
		} else { /* still wanted */
			*o = m->g[j++];
			if (!o->member) { /* left a moment ago, back again */
				o->member = 1;
				o->pending = (uint8_t)m->robustness;
				changed = 1;
			}
		}
		/* Skip the repeats of this group in the wanted list. */
		while (c <= 0 && i < k && addr_eq(&want[i], &o->group))
			i++;
		members += o->member;
		ng++;
	}
	free(want);
	free(m->g);
	m->g = g;
	m->n = ng;
	m->members = members;
	if (changed)
		m->next_change = now;
	if (members > 0 && !m->armed) {
		m->armed = 1;
		m->next_refresh = now + m->refresh;
	}
	return changed;
}

uint32_t neigh_mld_count(const struct neigh_mld *m)
{
	return m->members;
}

typedef void neigh_mld_report_fn(void *ctx, enum neigh_mld_record type, const struct addr *groups,
				 uint32_t k);

/* One report per NEIGH_MLD_MAX_RECORDS groups that match (member, pending); returns how many. */
static int neigh_mld_emit(struct neigh_mld *m, enum neigh_mld_record type, int members,
			  int pending_only, neigh_mld_report_fn *report, void *ctx)
{
	struct addr buf[NEIGH_MLD_MAX_RECORDS];
	uint32_t k = 0;
	int sent = 0;

	for (uint32_t i = 0; i < m->n; i++) {
		const struct neigh_mld_group *x = &m->g[i];
		if (x->member != members || (pending_only && x->pending == 0))
			continue;
		buf[k++] = x->group;
		if (k == NEIGH_MLD_MAX_RECORDS) {
			report(ctx, type, buf, k);
			sent++;
			k = 0;
		}
	}
	if (k > 0) {
		report(ctx, type, buf, k);
		sent++;
	}
	return sent;
}

int neigh_mld_tick(struct neigh_mld *m, uint64_t now, neigh_mld_report_fn *report, void *ctx)
{
	int sent = 0, pending = 0;

	for (uint32_t i = 0; i < m->n; i++)
		pending |= m->g[i].pending != 0;
	if (pending && now >= m->next_change) {
		sent += neigh_mld_emit(m, NEIGH_MLD_TO_EX, 1, 1, report, ctx);
		sent += neigh_mld_emit(m, NEIGH_MLD_TO_IN, 0, 1, report, ctx);
		uint32_t ng = 0;
		for (uint32_t i = 0; i < m->n; i++) {
			struct neigh_mld_group *x = &m->g[i];
			if (x->pending > 0)
				x->pending--;
			if (x->member || x->pending > 0)
				m->g[ng++] = *x; /* a group left and reported often enough goes */
		}
		m->n = ng;
		m->next_change = now + m->interval;
	}
	if (m->armed && now >= m->next_refresh) {
		if (m->members > 0)
			sent += neigh_mld_emit(m, NEIGH_MLD_IS_EX, 1, 0, report, ctx);
		m->next_refresh = now + m->refresh;
	}
	return sent;
}
