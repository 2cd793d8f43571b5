#include "dataplane/fwd.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/csum.h"
#include "dataplane/hash.h"
#include "dataplane/pkt.h"

#define FWD_CACHE_LINE 64
#define FWD_NONE UINT32_MAX

static const char *const fwd_drop_names[] = {
#define FWD_X(name, str) str,
	FWD_DROP_REASONS(FWD_X)
#undef FWD_X
};

const char *fwd_drop_str(unsigned reason)
{
	return reason < FWD_DROP__COUNT ? fwd_drop_names[reason] : "?";
}

/* ------------------------------------------------------------------------ */
/* Hashes                                                                   */

uint64_t fwd_flow_hash(uint64_t seed, const struct addr *src, const struct addr *dst,
		       uint16_t sport, uint16_t dport, uint8_t proto)
{
	/*
	 * A canonical byte string, not the struct: ports big-endian, so every
	 * node of any byte order hashes the same bytes (Maglev's promise that a
	 * flow moved by ECMP lands on the same backend depends on it).
	 */
	uint8_t b[40];

	memcpy(b, src->b, 16);
	memcpy(b + 16, dst->b, 16);
	b[32] = (uint8_t)(sport >> 8);
	b[33] = (uint8_t)sport;
	b[34] = (uint8_t)(dport >> 8);
	b[35] = (uint8_t)dport;
	b[36] = proto;
	b[37] = src->family;
	b[38] = 0;
	b[39] = 0;
	return hash_bytes(b, sizeof(b), seed);
}

/*
 * The VIP index is local to this node (never compared across nodes), so a
 * cheap multiply-mix of the address words is enough; it runs per packet.
 */
static inline uint32_t fwd_vip_hash_words(uint64_t a, uint64_t b, uint8_t family, uint16_t port,
					  uint8_t proto)
{
	a ^= hash_rotl64(b, 17) ^ ((uint64_t)port << 16 | (uint64_t)proto << 8 | family);
	a *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(a >> 32);
}

static inline uint32_t fwd_vip_hash(const struct addr *vip, uint16_t port, uint8_t proto)
{
	uint64_t a, b;

	memcpy(&a, vip->b, 8);
	memcpy(&b, vip->b + 8, 8);
	return fwd_vip_hash_words(a, b, vip->family, port, proto);
}

/* ------------------------------------------------------------------------ */
/* State                                                                    */

static uint32_t fwd_next_gen; /* one builder at a time (fwd.h, "Threads") */

/* Inlined into the per-packet path; fwd_find_service() is the exported copy. */
static inline uint32_t fwd_lookup_service(const struct fwd_state *st, const struct addr *vip,
					  uint16_t port, uint8_t proto)
{
	uint32_t i = fwd_vip_hash(vip, port, proto) & st->vip_mask;

	for (;;) {
		uint32_t s = st->vip_slots[i];
		if (s == 0)
			return FWD_NONE;
		const struct fwd_service *svc = &st->services[s - 1];
		if (svc->port == port && svc->proto == proto && addr_eq(&svc->vip, vip))
			return s - 1;
		i = (i + 1) & st->vip_mask;
	}
}

/*
 * fwd_lookup_service for an IPv4 destination read straight from the packet.
 * The fast path must not read the flow key it has just written byte by byte:
 * those wider loads cannot be forwarded from the narrow stores and stall
 * (store-to-load forwarding), which perf showed as the VIP lookup's main
 * cost. Same hash as fwd_vip_hash of the equivalent struct addr.
 */
static inline uint32_t fwd_lookup_service_v4(const struct fwd_state *st, const uint8_t *dst4,
					     uint16_t port, uint8_t proto)
{
	const uint8_t t[8] = {dst4[0], dst4[1], dst4[2], dst4[3], 0, 0, 0, 0};
	uint64_t a;

	memcpy(&a, t, 8);
	uint32_t i = fwd_vip_hash_words(a, 0, ADDR_V4, port, proto) & st->vip_mask;
	for (;;) {
		uint32_t sl = st->vip_slots[i];
		if (sl == 0)
			return FWD_NONE;
		const struct fwd_service *svc = &st->services[sl - 1];
		if (svc->port == port && svc->proto == proto && svc->vip.family == ADDR_V4 &&
		    memcmp(svc->vip.b, dst4, 4) == 0)
			return sl - 1;
		i = (i + 1) & st->vip_mask;
	}
}

/* A service on this VIP address, any port (the announcing one if there is one). */
uint32_t fwd_find_service(const struct fwd_state *st, const struct addr *vip, uint16_t port,
			  uint8_t proto)
{
	return fwd_lookup_service(st, vip, port, proto);
}

static uint32_t fwd_find_vip(const struct fwd_state *st, const struct addr *vip)
{
	uint32_t i = fwd_vip_hash(vip, 0, 0) & st->vip_mask;

	for (;;) {
		uint32_t s = st->vipaddr_slots[i];
		if (s == 0)
			return FWD_NONE;
		if (addr_eq(&st->services[s - 1].vip, vip))
			return s - 1;
		i = (i + 1) & st->vip_mask;
	}
}

static int fwd_backend_cmp_uid(const void *a, const void *b)
{
	const struct fwd_backend *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Index of the backend with this uid, or FWD_NONE (binary search on uid). */
static uint32_t fwd_backend_by_uid(const struct fwd_service *svc, uint32_t uid)
{
	uint32_t lo = 0, hi = svc->n_backends;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint32_t u = svc->backends[mid].uid;
		if (u == uid)
			return mid;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return FWD_NONE;
}

static void fwd_vip_insert(uint32_t *slots, uint32_t mask, uint32_t h, uint32_t value)
{
	uint32_t i = h & mask;

	while (slots[i] != 0)
		i = (i + 1) & mask;
	slots[i] = value + 1;
}

static int fwd_check_service(const struct fwd_spec *spec, uint32_t si, char *err, size_t errlen)
{
	const struct fwd_service_spec *s = &spec->services[si];
	char vip[ADDR_STRLEN], ba[ADDR_STRLEN];

	addr_format(&s->vip, vip, sizeof(vip));
	if (s->vip.family != ADDR_V4 && s->vip.family != ADDR_V6) {
		snprintf(err, errlen, "service %u: VIP has no address family", si);
		return -EINVAL;
	}
	if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP) {
		snprintf(err, errlen, "service %s:%u: protocol %u is not tcp or udp", vip, s->port,
			 s->proto);
		return -EINVAL;
	}
	if (s->port == 0) {
		snprintf(err, errlen, "service %s: port 0", vip);
		return -EINVAL;
	}
	if (s->mode != FWD_MODE_NAT && s->mode != FWD_MODE_DSR && s->mode != FWD_MODE_TUNNEL) {
		snprintf(err, errlen, "service %s:%u: unknown mode %u", vip, s->port, s->mode);
		return -EINVAL;
	}
	if (s->mode == FWD_MODE_NAT) {
		const struct addr *node = s->vip.family == ADDR_V4 ? &spec->node_v4 : &spec->node_v6;
		if (node->family != s->vip.family) {
			snprintf(err, errlen,
				 "service %s:%u: nat mode needs a node address of the VIP's family",
				 vip, s->port);
			return -EINVAL;
		}
	}
	if (s->mode == FWD_MODE_TUNNEL && spec->node_v4.family != ADDR_V4) {
		snprintf(err, errlen, "service %s:%u: tunnel mode needs an IPv4 node address", vip,
			 s->port);
		return -EINVAL;
	}
	if (s->n_backends > FWD_MAX_BACKENDS) {
		snprintf(err, errlen, "service %s:%u: %u backends (at most %u)", vip, s->port,
			 s->n_backends, FWD_MAX_BACKENDS);
		return -EINVAL;
	}
	if (s->n_backends > 0 && s->backends == NULL) {
		snprintf(err, errlen, "service %s:%u: backends missing", vip, s->port);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < si; i++) {
		const struct fwd_service_spec *o = &spec->services[i];
		if (o->port == s->port && o->proto == s->proto && addr_eq(&o->vip, &s->vip)) {
			snprintf(err, errlen, "service %s:%u: defined twice", vip, s->port);
			return -EINVAL;
		}
	}
	/* Addresses are formatted for errors only: a build checks every backend (20k and more). */
	for (uint32_t i = 0; i < s->n_backends; i++) {
		const struct fwd_backend_spec *b = &s->backends[i];
		if (b->uid == 0) {
			addr_format(&b->addr, ba, sizeof(ba));
			snprintf(err, errlen, "service %s:%u: backend %s has uid 0", vip, s->port, ba);
			return -EINVAL;
		}
		if (s->mode == FWD_MODE_TUNNEL ? b->addr.family != ADDR_V4
					       : b->addr.family != s->vip.family) {
			addr_format(&b->addr, ba, sizeof(ba));
			snprintf(err, errlen,
				 "service %s:%u: backend %s: address family does not fit mode", vip,
				 s->port, ba);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Whether old (a service of the previous state, with that state's seed
 * equal to this one's) had exactly the Maglev inputs svc has now: table
 * size and, in the same (uid) order, the same backends with the same
 * identity (address, port) and weight. Then its table is what a fill would
 * give now.
 */
static int fwd_same_maglev(const struct fwd_service *old, const struct fwd_service *svc,
			   uint32_t size)
{
	if (old->table.entry == NULL || old->table.size != size ||
	    old->n_backends != svc->n_backends || old->table.n_backends != svc->n_backends)
		return 0;
	for (uint32_t i = 0; i < svc->n_backends; i++) {
		const struct fwd_backend *a = &old->backends[i], *b = &svc->backends[i];
		if (a->uid != b->uid || a->port != b->port || a->weight != b->weight ||
		    !addr_eq(&a->addr, &b->addr))
			return 0;
	}
	return 1;
}

/* old: the same service in the previous state (same seed), or NULL. 1 = table copied, 0 = built. */
static int fwd_build_service(struct fwd_service *svc, const struct fwd_service_spec *s,
			     uint64_t seed, const struct fwd_service *old, char *err, size_t errlen)
{
	struct maglev_backend *mb = NULL;
	char vip[ADDR_STRLEN];
	int rc;

	svc->vip = s->vip;
	svc->port = s->port;
	svc->proto = s->proto;
	svc->mode = s->mode;
	svc->announce = s->announce;
	svc->n_backends = s->n_backends;
	svc->backends = calloc(s->n_backends ? s->n_backends : 1, sizeof(*svc->backends));
	mb = calloc(s->n_backends ? s->n_backends : 1, sizeof(*mb));
	if (svc->backends == NULL || mb == NULL) {
		snprintf(err, errlen, "out of memory");
		free(mb);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->n_backends; i++) {
		struct fwd_backend *b = &svc->backends[i];
		b->addr = s->backends[i].addr;
		b->port = s->backends[i].port ? s->backends[i].port : s->port;
		memcpy(b->mac, s->backends[i].mac, 6);
		b->mac_ok = s->backends[i].mac_ok;
		b->weight = s->backends[i].weight;
		b->uid = s->backends[i].uid;
	}
	/* Sorted by uid for the flow revalidation search; Maglev sorts by identity itself. */
	qsort(svc->backends, svc->n_backends, sizeof(*svc->backends), fwd_backend_cmp_uid);
	/* Duplicate uids sit next to each other once sorted: O(n log n), not O(n^2). */
	for (uint32_t i = 1; i < svc->n_backends; i++) {
		if (svc->backends[i].uid == svc->backends[i - 1].uid) {
			char ba[ADDR_STRLEN];
			addr_format(&s->vip, vip, sizeof(vip));
			addr_format(&svc->backends[i].addr, ba, sizeof(ba));
			snprintf(err, errlen, "service %s:%u: backend %s: duplicate uid %u", vip,
				 s->port, ba, svc->backends[i].uid);
			free(mb);
			return -EINVAL;
		}
	}
	uint32_t size = s->table_size ? s->table_size : MAGLEV_DEFAULT_SIZE;
	if (old != NULL && fwd_same_maglev(old, svc, size)) {
		free(mb);
		if (maglev_copy(&svc->table, &old->table) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		svc->table_digest = old->table_digest; /* the same slots, the same uids */
		return 1;
	}
	for (uint32_t i = 0; i < s->n_backends; i++) {
		mb[i].addr = svc->backends[i].addr;
		mb[i].port = svc->backends[i].port;
		mb[i].weight = svc->backends[i].weight;
	}
	rc = maglev_build(&svc->table, size, mb, s->n_backends, seed);
	free(mb);
	if (rc >= 0)
		svc->table_digest = fwd_table_digest(svc);
	if (rc < 0) {
		addr_format(&s->vip, vip, sizeof(vip));
		snprintf(err, errlen,
			 "service %s:%u: cannot build Maglev table of size %u for %u backends "
			 "(size must be prime, at least the backend count, at most %u; backend "
			 "identities unique): %s",
			 vip, s->port, s->table_size ? s->table_size : MAGLEV_DEFAULT_SIZE,
			 s->n_backends, MAGLEV_MAX_SIZE, strerror(-rc));
		return rc;
	}
	return 0;
}

struct fwd_state *fwd_state_build(const struct fwd_spec *spec, char *err, size_t errlen)
{
	return fwd_state_build_from(spec, NULL, err, errlen);
}

struct fwd_state *fwd_state_build_from(const struct fwd_spec *spec, const struct fwd_state *prev,
				       char *err, size_t errlen)
{
	struct fwd_state *st;
	uint32_t slots = 16, n_counters;
	size_t stride;

	if (errlen > 0)
		err[0] = '\0';
	if (spec->n_workers == 0 || (spec->n_services > 0 && spec->services == NULL)) {
		snprintf(err, errlen, "invalid spec: %s",
			 spec->n_workers == 0 ? "no workers" : "services missing");
		return NULL;
	}
	if (spec->n_services >= 0x40000000u) {
		snprintf(err, errlen, "too many services");
		return NULL;
	}
	n_counters = spec->n_services;
	for (uint32_t i = 0; i < spec->n_services; i++) {
		if (fwd_check_service(spec, i, err, errlen) < 0)
			return NULL;
		n_counters += spec->services[i].n_backends;
	}

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto oom;
	st->revision = spec->revision;
	if (++fwd_next_gen == 0) /* 0 is what a zeroed flow entry holds */
		fwd_next_gen = 1;
	st->gen = fwd_next_gen;
	st->hash_seed = spec->hash_seed;
	memcpy(st->port_mac, spec->port_mac, 6);
	memcpy(st->gateway_mac, spec->gateway_mac, 6);
	for (int i = 0; i < 6; i++)
		st->gateway_ok |= spec->gateway_mac[i] != 0;
	st->node_v4 = spec->node_v4;
	st->node_v6 = spec->node_v6;
	st->n_workers = spec->n_workers;

	/* Two indexes (exact, address only), load <= 1/2. */
	while (slots < 2 * (spec->n_services + 1))
		slots <<= 1;
	st->vip_mask = slots - 1;
	st->vip_slots = calloc(slots, sizeof(*st->vip_slots));
	st->vipaddr_slots = calloc(slots, sizeof(*st->vipaddr_slots));
	st->services = calloc(spec->n_services ? spec->n_services : 1, sizeof(*st->services));
	if (st->vip_slots == NULL || st->vipaddr_slots == NULL || st->services == NULL)
		goto oom;

	n_counters = 0;
	for (uint32_t i = 0; i < spec->n_services; i++) {
		struct fwd_service *svc = &st->services[i];
		st->n_services = i + 1; /* so fwd_state_free frees what was built */
		const struct fwd_service_spec *ss = &spec->services[i];
		const struct fwd_service *old = NULL;
		if (prev != NULL && prev->hash_seed == spec->hash_seed) {
			uint32_t oi = fwd_find_service(prev, &ss->vip, ss->port, ss->proto);
			old = oi != FWD_NONE ? &prev->services[oi] : NULL;
		}
		int rc = fwd_build_service(svc, ss, spec->hash_seed, old, err, errlen);
		if (rc < 0)
			goto fail;
		st->tables_reused += (uint32_t)rc;
		svc->counter = n_counters++;
		for (uint32_t b = 0; b < svc->n_backends; b++) {
			struct fwd_backend *be = &svc->backends[b];
			be->counter = n_counters++;
			/* fwd_check_service: a nat service's backends are of its VIP's family */
			if (svc->mode == FWD_MODE_NAT && svc->vip.family == ADDR_V4)
				rw_nat4_prepare(&be->nat4, &svc->vip, &st->node_v4, &be->addr,
						be->port);
		}
		fwd_vip_insert(st->vip_slots, st->vip_mask,
			       fwd_vip_hash(&svc->vip, svc->port, svc->proto), i);
		/* One address entry per VIP: ARP announce if any of its services asks. */
		uint32_t other = fwd_find_vip(st, &svc->vip);
		if (other == FWD_NONE)
			fwd_vip_insert(st->vipaddr_slots, st->vip_mask, fwd_vip_hash(&svc->vip, 0, 0),
				       i);
		else if (svc->announce)
			st->services[other].announce = 1;
	}

	st->node4_only =
	    st->node_v4.family == ADDR_V4 && fwd_find_vip(st, &st->node_v4) == FWD_NONE;
	memcpy(&st->node4, st->node_v4.b, 4);

	/* Counter blocks start on their own cache lines: no false sharing. */
	stride = ((size_t)n_counters * sizeof(struct fwd_counter) + FWD_CACHE_LINE - 1) /
		 FWD_CACHE_LINE * FWD_CACHE_LINE / sizeof(struct fwd_counter);
	if (stride == 0)
		stride = FWD_CACHE_LINE / sizeof(struct fwd_counter) + 1;
	st->n_counters = n_counters;
	st->counter_stride = stride;
	if (posix_memalign((void **)&st->counters, FWD_CACHE_LINE,
			   stride * spec->n_workers * sizeof(struct fwd_counter)) != 0) {
		st->counters = NULL;
		goto oom;
	}
	memset(st->counters, 0, stride * spec->n_workers * sizeof(struct fwd_counter));
	return st;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	fwd_state_free(st);
	return NULL;
}

/* Fixed, so that digests compare across nodes and versions of this code. */
#define FWD_DIGEST_SEED 0x666f727764696765ULL

uint64_t fwd_table_digest(const struct fwd_service *svc)
{
	const struct maglev_table *t = &svc->table;
	uint64_t h = hash_step(FWD_DIGEST_SEED, t->size);

	for (uint32_t k = 0; t->entry != NULL && k < t->size; k++) {
		uint32_t e = t->entry[k];
		h = hash_step(h, e < svc->n_backends ? svc->backends[e].uid : 0);
	}
	return hash_fmix64(h);
}

void fwd_state_free(struct fwd_state *st)
{
	if (st == NULL)
		return;
	for (uint32_t i = 0; st->services && i < st->n_services; i++) {
		maglev_free(&st->services[i].table);
		free(st->services[i].backends);
	}
	free(st->services);
	free(st->vip_slots);
	free(st->vipaddr_slots);
	free(st->counters);
	free(st);
}

void fwd_counter_sum(const struct fwd_state *st, uint32_t counter, struct fwd_counter *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < st->n_workers; w++) {
		const struct fwd_counter *c = fwd_counter_of(st, w, counter);
		out->pkts += c->pkts;
		out->bytes += c->bytes;
		out->new_flows += c->new_flows;
		out->reply_pkts += c->reply_pkts;
		out->reply_bytes += c->reply_bytes;
	}
}

/* ------------------------------------------------------------------------ */
/* Worker                                                                   */

void fwd_worker_init(struct fwd_worker *w, unsigned id, struct flow_table *flows,
		     struct snat_pool *snat_v4, struct snat_pool *snat_v6)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->flows = flows;
	if (flows != NULL)
		flow_index_of(flows, &w->flow_ix);
	w->snat_v4 = snat_v4;
	w->snat_v6 = snat_v6;
	snat_refs_of(snat_v4, &w->snat_refs4);
	snat_refs_of(snat_v6, &w->snat_refs6);
}

void fwd_flow_release(void *worker, const struct flow_entry *e)
{
	struct fwd_worker *w = worker;

	w->flow_releases++;
	if (e->flags & FLOW_F_REV) {
		struct snat_pool *p = e->snat_addr.family == ADDR_V4 ? w->snat_v4 : w->snat_v6;
		if (p != NULL)
			(void)snat_free(p, e->snat_port);
	}
}

/*
 * Per-packet scratch between the burst stages. Kept small (the burst holds
 * 64 of them): no struct pkt_info. A common frame (pkt_fast_check) is
 * described by `fast`, and its pkt_info is filled from it only when a
 * rewrite needs one (nat, tunnel, replies); any other frame is parsed again
 * in stage 3 (ARP, ICMP, IPv4 options, IPv6 extension headers: rare, and
 * the bytes have not changed).
 */
struct fwd_pkt {
	struct flow_key key;
	uint64_t hash;
	uint32_t hint; /* flow_prefetch_entry's, or FLOW_HINT_NONE */
	uint32_t svc;
	struct pkt_fast fast; /* valid when fast_ok */
	uint8_t kind;	      /* enum fwd_kind */
	uint8_t drop;
	uint8_t fast_ok;
	uint8_t tcp_flags;
};

enum fwd_kind {
	FWD_K_DROP = 0,
	FWD_K_VIP,     /* TCP/UDP to a service: flow lookup */
	FWD_K_REVERSE, /* TCP/UDP to a node address: NAT reply lookup */
	FWD_K_ARP,
	FWD_K_ECHO, /* ICMP/ICMPv6 echo request to a node address or VIP */
	FWD_K_CONTROL,
	FWD_K_NS, /* IPv6 neighbour solicitation (answered here when it asks for us) */
};

static inline int fwd_is_node(const struct fwd_state *st, const struct addr *a)
{
	return addr_eq(a->family == ADDR_V4 ? &st->node_v4 : &st->node_v6, a);
}

/*
 * fwd_is_node for an IPv4 destination read from the packet: the key stage 1
 * has just written byte by byte must not be read back (see
 * fwd_lookup_service_v4).
 */
static inline int fwd_is_node4(const struct fwd_state *st, const uint8_t *dst4)
{
	uint32_t d;

	memcpy(&d, dst4, 4);
	return d == st->node4 && st->node_v4.family == ADDR_V4;
}

static inline void fwd_key(struct flow_key *k, const struct pkt_info *pi)
{
	k->src = pi->src;
	k->dst = pi->dst;
	k->sport = pi->sport;
	k->dport = pi->dport;
	k->proto = pi->l4_proto;
	k->pad = 0;
}

/* The flow key of a common frame, straight from its bytes (what fwd_key gives from its pkt_info). */
static inline void fwd_key_fast(struct flow_key *k, const uint8_t *data, const struct pkt_fast *f)
{
	const uint8_t *ip = data + f->l3_off, *l4 = data + f->l4_off;

	*k = (struct flow_key){0};
	if (!f->v6) {
		k->src.family = ADDR_V4;
		k->dst.family = ADDR_V4;
		memcpy(k->src.b, ip + 12, 4);
		memcpy(k->dst.b, ip + 16, 4);
	} else {
		k->src.family = ADDR_V6;
		k->dst.family = ADDR_V6;
		memcpy(k->src.b, ip + 8, 16);
		memcpy(k->dst.b, ip + 24, 16);
	}
	k->sport = pkt_get16(l4);
	k->dport = pkt_get16(l4 + 2);
	k->proto = f->l4_proto;
}

/* The pkt_info of a packet stage 1 classified (pkt_parse succeeded on it then). */
static void fwd_pi(const struct rw_buf *b, const struct fwd_pkt *p, struct pkt_info *pi)
{
	if (p->fast_ok)
		pkt_fast_fill(b->data, &p->fast, pi);
	else
		(void)pkt_parse(b->data, b->len, pi);
}

/* Stage 1 for any frame but a common one (see fwd_classify). */
static void fwd_classify_slow(const struct fwd_state *st, const struct rw_buf *b,
			      struct fwd_pkt *p)
{
	struct pkt_info pi_mem, *pi = &pi_mem;
	int rc = pkt_parse(b->data, b->len, pi);

	if (rc < 0) {
		p->drop = FWD_DROP_MALFORMED;
		return;
	}
	int is_l4 = pi->l4_proto == IPPROTO_TCP || pi->l4_proto == IPPROTO_UDP;

	if (is_l4 && pi->frag != PKT_FRAG_LATER) {
		p->svc = fwd_lookup_service(st, &pi->dst, pi->dport, pi->l4_proto);
		if (p->svc != FWD_NONE || fwd_is_node(st, &pi->dst)) {
			p->kind = p->svc != FWD_NONE ? FWD_K_VIP : FWD_K_REVERSE;
			/* For a reply, this is the reverse key flow_set_reverse indexed. */
			fwd_key(&p->key, pi);
			p->tcp_flags = pi->tcp_flags;
			p->hash = flow_hash(&p->key);
			return;
		}
	}
	if (pi->l3 == PKT_L3_ARP) {
		p->kind = FWD_K_ARP;
		return;
	}
	if (pi->l3 != PKT_L3_IPV4 && pi->l3 != PKT_L3_IPV6) {
		p->drop = FWD_DROP_NOT_LOCAL;
		return;
	}
	int is_echo = pi->frag == PKT_FRAG_NONE &&
		      ((pi->l4_proto == IPPROTO_ICMP && pi->icmp_type == 8) ||
		       (pi->l4_proto == IPPROTO_ICMPV6 && pi->icmp_type == 128));

	if (pi->l3 == PKT_L3_IPV6 && pi->l4_proto == IPPROTO_ICMPV6 && pi->frag == PKT_FRAG_NONE &&
	    (pi->icmp_type == 135 || pi->icmp_type == 136)) {
		/*
		 * A solicitation for one of our addresses is answered here (as
		 * ARP); the rest of neighbour discovery goes to the control
		 * thread, which learns neighbours from it.
		 */
		p->kind = pi->icmp_type == 135 ? FWD_K_NS : FWD_K_CONTROL;
		return;
	}
	if (fwd_is_node(st, &pi->dst)) {
		p->kind = is_echo ? FWD_K_ECHO : FWD_K_DROP;
		p->drop = pi->frag == PKT_FRAG_LATER ? FWD_DROP_FRAGMENT : FWD_DROP_NODE_OTHER;
		return;
	}
	if (fwd_find_vip(st, &pi->dst) == FWD_NONE)
		p->drop = FWD_DROP_NOT_LOCAL;
	else if (pi->frag == PKT_FRAG_LATER)
		p->drop = FWD_DROP_FRAGMENT;
	else if (is_echo)
		p->kind = FWD_K_ECHO;
	else
		p->drop = is_l4 ? FWD_DROP_NO_SERVICE : FWD_DROP_UNSUPPORTED;
}

/*
 * Stage 1: parse and classify; compute the flow-table hash of TCP/UDP
 * packets. The common frame (unfragmented TCP/UDP over IPv4 without options
 * or IPv6 without extension headers) never builds a pkt_info here.
 */
/*
 * The last IPv4 (destination, port, protocol) stage 1 looked up and its
 * service: a burst mostly carries packets to a few VIPs, and consecutive
 * packets to the same one skip the VIP hash.
 */
struct fwd_vip_memo {
	uint32_t dst4; /* as the bytes of the packet, native order */
	uint32_t port_proto; /* port << 8 | proto; 0 = empty (port 0 is never a service) */
	uint32_t svc;
};

static inline __attribute__((always_inline)) uint32_t
fwd_lookup_service_memo(const struct fwd_state *st, struct fwd_vip_memo *m, const uint8_t *dst4,
			uint16_t port, uint8_t proto)
{
	uint32_t d, pp = (uint32_t)port << 8 | proto;

	memcpy(&d, dst4, 4);
	if (d != m->dst4 || pp != m->port_proto) {
		m->dst4 = d;
		m->port_proto = pp;
		/* nat replies (to the node address, each to its own SNAT port) miss the memo */
		m->svc = d == st->node4 && st->node4_only ? FWD_NONE
							  : fwd_lookup_service_v4(st, dst4, port, proto);
	}
	return m->svc;
}

static inline __attribute__((always_inline)) void
fwd_classify(const struct fwd_state *st, const struct rw_buf *b, struct fwd_pkt *p,
	     struct fwd_vip_memo *memo)
{
	/*
	 * The frame's description in a local first: its fields stay in
	 * registers here instead of being read back from *p after every store
	 * into *p (which, to the compiler, might have changed them).
	 */
	struct pkt_fast f;

	p->kind = FWD_K_DROP;
	p->svc = FWD_NONE;
	p->hint = FLOW_HINT_NONE;
	p->fast_ok = (uint8_t)pkt_fast_check(b->data, b->len, &f);
	if (__builtin_expect(!p->fast_ok, 0)) {
		fwd_classify_slow(st, b, p);
		return;
	}
	p->fast = f;
	fwd_key_fast(&p->key, b->data, &f);
	p->tcp_flags = f.tcp_flags;
	const uint8_t *ip = b->data + f.l3_off, *l4 = b->data + f.l4_off;
	if (!f.v6)
		p->svc = fwd_lookup_service_memo(st, memo, ip + 16, pkt_get16(l4 + 2), f.l4_proto);
	else
		p->svc = fwd_lookup_service(st, &p->key.dst, p->key.dport, p->key.proto);
	if (__builtin_expect(p->svc != FWD_NONE, 1) ||
	    (!f.v6 ? fwd_is_node4(st, ip + 16) : fwd_is_node(st, &p->key.dst))) {
		p->kind = p->svc != FWD_NONE ? FWD_K_VIP : FWD_K_REVERSE;
		/* from the packet too (see fwd_lookup_service_v4); equals flow_hash(&p->key) */
		p->hash = !f.v6 ? flow_hash_v4(ip + 12, ip + 16, pkt_get16(l4), pkt_get16(l4 + 2),
					       f.l4_proto)
				: flow_hash(&p->key);
		return;
	}
	/* What fwd_classify_slow concludes for unfragmented TCP/UDP to neither. */
	p->drop = fwd_find_vip(st, &p->key.dst) == FWD_NONE ? FWD_DROP_NOT_LOCAL
							     : FWD_DROP_NO_SERVICE;
}

static int fwd_drop(struct fwd_worker *w, struct fwd_result *res, unsigned reason)
{
	w->drops[reason]++;
	res->verdict = FWD_DROP;
	res->drop = (uint8_t)reason;
	return FWD_DROP;
}
/* ARP request for a node address or an announced VIP: turn it into the reply in place. */
static int fwd_arp(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *b,
		   const struct pkt_info *pi, struct fwd_result *res)
{
	uint8_t *arp = b->data + pi->l3_off;
	int ours = addr_eq(&pi->dst, &st->node_v4);

	if (pi->arp_op == PKT_ARP_REPLY || (pi->arp_op == PKT_ARP_REQUEST && !ours)) {
		/* Replies and others' requests carry neighbours the control thread learns. */
		uint32_t s = fwd_find_vip(st, &pi->dst);
		if (pi->arp_op == PKT_ARP_REQUEST && s != FWD_NONE && st->services[s].announce)
			ours = 1;
		else {
			w->to_control++;
			res->verdict = FWD_CONTROL;
			return FWD_CONTROL;
		}
	}
	if (!ours || pi->arp_op != PKT_ARP_REQUEST)
		return fwd_drop(w, res, FWD_DROP_ARP_OTHER);

	/* RFC 826: swap sender and target, answer with our MAC. */
	uint8_t tpa[4];
	memcpy(tpa, arp + 24, 4);
	pkt_put16(arp + 6, PKT_ARP_REPLY);
	memcpy(arp + 18, arp + 8, 10); /* target hw + proto := sender's */
	memcpy(arp + 8, st->port_mac, 6);
	memcpy(arp + 14, tpa, 4);
	rw_eth(b->data, pi->arp_sha, st->port_mac);
	w->replies++;
	res->verdict = FWD_REPLY;
	return FWD_REPLY;
}

/* ICMP echo request -> echo reply in place (RFC 792, RFC 4443 §4.2). */
static int fwd_echo(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *b,
		    const struct pkt_info *pi, struct fwd_result *res)
{
	uint8_t *l3 = b->data + pi->l3_off;
	uint8_t *icmp = b->data + pi->l4_off;
	uint8_t smac[6];
	uint16_t old_word = pkt_get16(icmp), new_word;

	if (pi->l3 == PKT_L3_IPV4) {
		uint8_t tmp[4];
		uint16_t old_ttl = pkt_get16(l3 + 8);
		memcpy(tmp, l3 + 12, 4);
		memcpy(l3 + 12, l3 + 16, 4);
		memcpy(l3 + 16, tmp, 4);
		l3[8] = 64;
		pkt_put16(l3 + 10, csum_update16(pkt_get16(l3 + 10), old_ttl, pkt_get16(l3 + 8)));
		icmp[0] = 0;
	} else {
		uint8_t tmp[16];
		memcpy(tmp, l3 + 8, 16);
		memcpy(l3 + 8, l3 + 24, 16);
		memcpy(l3 + 24, tmp, 16);
		l3[7] = 64;
		icmp[0] = 129;
	}
	/* Swapping addresses leaves any pseudo-header sum unchanged; only the type moved. */
	new_word = pkt_get16(icmp);
	pkt_put16(icmp + 2, csum_update16(pkt_get16(icmp + 2), old_word, new_word));
	memcpy(smac, b->data + 6, 6);
	rw_eth(b->data, smac, st->port_mac);
	w->replies++;
	res->verdict = FWD_REPLY;
	return FWD_REPLY;
}

/*
 * IPv6 neighbour solicitation (RFC 4861 section 7): answered in place with a
 * neighbour advertisement when its target is the node's IPv6 address or a
 * VIP whose service announces (the IPv6 counterpart of fwd_arp). Invalid
 * solicitations (7.1.1) are dropped; valid ones for other targets go to the
 * control thread. The advertisement has the solicitation's length when that
 * carried an option (then with our Target Link-Layer Address option), else
 * 24 bytes without it (allowed for a unicast solicitation, 7.2.4); a
 * duplicate address probe (source ::) for our address is answered to all
 * nodes, and only when there is room for the option it must carry.
 */
static int fwd_ns(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *b,
		  const struct pkt_info *pi, struct fwd_result *res)
{
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	static const uint8_t unspecified[16];
	uint8_t *ip = b->data + pi->l3_off, *icmp = b->data + pi->l4_off;
	uint32_t mlen = pi->l4_len, off;
	const uint8_t *slla = NULL;
	struct addr target;

	if (ip[7] != 255 || pi->icmp_code != 0 || mlen < 24 || icmp[8] == 0xff ||
	    csum_l4_verify(&pi->src, &pi->dst, IPPROTO_ICMPV6, icmp, mlen) != 1)
		return fwd_drop(w, res, FWD_DROP_ND_OTHER); /* RFC 4861 7.1.1, checksum included */
	for (off = 24; off + 2 <= mlen; off += icmp[off + 1] * 8u) {
		if (icmp[off + 1] == 0 || off + icmp[off + 1] * 8u > mlen)
			return fwd_drop(w, res, FWD_DROP_ND_OTHER);
		if (icmp[off] == 1) /* Source Link-Layer Address */
			slla = icmp + off + 2;
	}
	int dad = memcmp(ip + 8, unspecified, 16) == 0;
	if (dad && (slla != NULL || memcmp(ip + 24, all_nodes, 2) != 0))
		return fwd_drop(w, res, FWD_DROP_ND_OTHER); /* 7.1.1: :: only to a multicast group */
	addr_set_v6(&target, icmp + 8);
	if (!addr_eq(&target, &st->node_v6)) {
		uint32_t s = fwd_find_vip(st, &target);
		if (s == FWD_NONE || !st->services[s].announce) {
			w->to_control++;
			res->verdict = FWD_CONTROL;
			return FWD_CONTROL;
		}
	}
	uint32_t nlen = mlen >= 32 ? 32 : 24;
	if (dad && nlen < 32)
		return fwd_drop(w, res, FWD_DROP_ND_OTHER);

	uint8_t dmac[6];
	memcpy(dmac, dad ? all_nodes_mac : slla != NULL ? slla : b->data + 6, 6);
	memcpy(ip + 24, dad ? all_nodes : ip + 8, 16); /* to the solicitor (or all nodes) */
	memcpy(ip + 8, icmp + 8, 16);			/* from the target address */
	pkt_put16(ip + 4, (uint16_t)nlen);
	ip[7] = 255;
	icmp[0] = 136;
	icmp[1] = 0;
	icmp[4] = (uint8_t)((dad ? 0 : 0x40) | 0x20); /* Solicited (not for DAD), Override */
	icmp[5] = icmp[6] = icmp[7] = 0;
	if (nlen == 32) { /* Target Link-Layer Address */
		icmp[24] = 2;
		icmp[25] = 1;
		memcpy(icmp + 26, st->port_mac, 6);
	}
	struct addr src, dst;
	addr_set_v6(&src, ip + 8);
	addr_set_v6(&dst, ip + 24);
	(void)csum_l4_fill(&src, &dst, IPPROTO_ICMPV6, icmp, nlen);
	b->len = pi->l4_off + nlen;
	rw_eth(b->data, dmac, st->port_mac);
	w->replies++;
	res->verdict = FWD_REPLY;
	return FWD_REPLY;
}

/*
 * The SNAT address of a nat flow: the node address of its family. A flow's
 * entry keeps the address it was set up with (line 1, for its reverse key);
 * the forward rewrite takes it from the state instead, which saves reading
 * line 1 per packet. The two agree while the flow's generation is the
 * state's: fwd_nat_setup sets it from this, and fwd_revalidate drops a flow
 * whose address is no longer the node's.
 */
static inline const struct addr *fwd_snat_addr(const struct fwd_state *st,
					       const struct flow_entry *e)
{
	return e->key.dst.family == ADDR_V4 ? &st->node_v4 : &st->node_v6;
}

/* Give a new nat flow its SNAT port and reverse key. Returns 0 or a drop reason + 1. */
static unsigned fwd_nat_setup(const struct fwd_state *st, struct fwd_worker *w,
			      struct flow_entry *e, const struct fwd_backend *be)
{
	const struct addr *node = fwd_snat_addr(st, e);
	struct snat_pool *pool = e->key.dst.family == ADDR_V4 ? w->snat_v4 : w->snat_v6;
	struct flow_key rk;
	uint16_t port;

	if (pool == NULL || snat_alloc(pool, &port) < 0)
		return FWD_DROP_SNAT_EXHAUSTED + 1;
	memset(&rk, 0, sizeof(rk));
	rk.src = be->addr;
	rk.dst = *node;
	rk.sport = be->port;
	rk.dport = port;
	rk.proto = e->key.proto;
	uint64_t rh = flow_hash(&rk);
	if (flow_set_reverse(w->flows, e, &rk, rh) < 0) {
		(void)snat_free(pool, port);
		return FWD_DROP_NAT_CONFLICT + 1;
	}
	/* the port's reference: replies find this entry from their port (fwd_prefetch_reply) */
	(void)snat_set_ref(pool, port, (uint32_t)(e - w->flow_ix.ent));
	return 0;
}

/*
 * rw_eth() (the whole dsr rewrite), inlined: a call into rewrite.c costs
 * more than the two stores it makes.
 */
static inline void fwd_set_macs(uint8_t *data, const uint8_t dst[6], const uint8_t src[6])
{
	memcpy(data, dst, 6);
	memcpy(data + 6, src, 6);
}

static inline void fwd_count(struct fwd_counter *c, uint32_t len)
{
	c->pkts++;
	c->bytes += len;
}

static inline void fwd_count_reply(struct fwd_counter *c, uint32_t len)
{
	c->reply_pkts++;
	c->reply_bytes += len;
}

/*
 * A flow whose cached backend index is not from this state: it keeps its
 * backend while that backend is still in the service (also when draining);
 * a removed backend's flow is removed (NULL: start over by the current
 * table). So is a flow that has no valid nat mapping for a nat service: set
 * up while the service was dsr, or with an SNAT address that is no longer
 * the node's (its replies would not come back here). Out of line: only the
 * first packet per flow after a state change.
 */
static __attribute__((noinline)) struct flow_entry *
fwd_revalidate(const struct fwd_state *st, struct fwd_worker *w, const struct fwd_service *svc,
	       uint32_t si, struct flow_entry *e, uint32_t *bi)
{
	*bi = fwd_backend_by_uid(svc, e->backend_uid);
	if (*bi == FWD_NONE ||
	    (svc->mode == FWD_MODE_NAT &&
	     (!(e->flags & FLOW_F_REV) || !addr_eq(&e->snat_addr, fwd_snat_addr(st, e))))) {
		flow_remove(w->flows, e);
		return NULL;
	}
	e->backend_idx = (uint16_t)*bi;
	e->svc_idx = si;
	e->state_gen = st->gen;
	return e;
}

/*
 * A new flow: the cluster-wide hash picks the backend (so every node picks
 * the same), then insert, and for nat the SNAT port and reverse key. Returns
 * the entry, or NULL after counting the drop.
 */
static __attribute__((noinline)) struct flow_entry *
fwd_new_flow(const struct fwd_state *st, struct fwd_worker *w, const struct fwd_service *svc,
	     struct fwd_pkt *p, uint64_t now, struct fwd_result *res, uint32_t *bi)
{
	const struct flow_key *k = &p->key;
	struct flow_entry *e;

	/* New flow: the cluster-wide hash, so every node picks the same backend. */
	*bi = maglev_lookup(&svc->table, fwd_flow_hash(st->hash_seed, &k->src, &k->dst, k->sport,
							  k->dport, k->proto));
	if (*bi == MAGLEV_NONE) {
		fwd_drop(w, res, FWD_DROP_NO_BACKEND);
		return NULL;
	}
	e = flow_insert(w->flows, k, p->hash, now);
	if (e == NULL) {
		fwd_drop(w, res, FWD_DROP_FLOW_TABLE_FULL);
		return NULL;
	}
	e->backend_idx = (uint16_t)*bi;
	e->backend_uid = svc->backends[*bi].uid;
	e->svc_idx = p->svc;
	e->state_gen = st->gen;
	if (svc->mode == FWD_MODE_NAT) {
		unsigned r = fwd_nat_setup(st, w, e, &svc->backends[*bi]);
		if (r != 0) {
			flow_remove(w->flows, e);
			fwd_drop(w, res, r - 1);
			return NULL;
		}
	}
	return e;
}

/*
 * The nat rewrite of a classified packet: a common frame straight from its
 * offsets (no pkt_info), any other through pkt_info and rw_nat. 0 or < 0.
 */
/* Whether the nat rewrite of p to these addresses can take the common-frame path. */
static inline int fwd_nat_fast(const struct fwd_pkt *p, const struct addr *src,
			       const struct addr *dst)
{
	uint8_t fam = p->fast.v6 ? ADDR_V6 : ADDR_V4;

	return p->fast_ok && src->family == fam && dst->family == fam;
}

static inline int fwd_nat(struct rw_buf *b, const struct fwd_pkt *p, const struct addr *src,
			  uint16_t sport, const struct addr *dst, uint16_t dport)
{
	struct pkt_info pi;

	if (__builtin_expect(fwd_nat_fast(p, src, dst), 1)) {
		rw_nat_frame(b->data, p->fast.l3_off, p->fast.l4_off, p->fast.v6, p->fast.l4_proto,
			     src, sport, dst, dport);
		return 0;
	}
	fwd_pi(b, p, &pi);
	return rw_nat(b->data, &pi, src, sport, dst, dport);
}

/* nat and tunnel rewrites (dsr has none beyond the MACs). 0 or -1 (drop REWRITE). */
static __attribute__((noinline)) int fwd_rewrite_l3(const struct fwd_state *st,
						    const struct fwd_service *svc,
						    const struct fwd_backend *be,
						    const struct flow_entry *e, struct rw_buf *b,
						    const struct fwd_pkt *p)
{
	struct pkt_info pi;

	if (svc->mode == FWD_MODE_NAT)
		return fwd_nat(b, p, fwd_snat_addr(st, e), e->snat_port, &be->addr, be->port) < 0
			   ? -1
			   : 0;
	fwd_pi(b, p, &pi);
	return rw_ipip_encap(b, &pi, &st->node_v4, &be->addr, 0) < 0 ? -1 : 0;
}

/* Stage 3 for a packet to a VIP: flow lookup or Maglev, then rewrite. */
static inline __attribute__((always_inline)) int
fwd_vip(const struct fwd_state *st, struct fwd_worker *w, struct fwd_counter *cblk,
	struct rw_buf *b, struct fwd_pkt *p, uint64_t now, struct fwd_result *res)
{
	const struct fwd_service *svc = &st->services[p->svc];
	struct flow_entry *e;
	uint32_t bi = FWD_NONE;
	int created = 0;

	int dir = FLOW_DIR_FWD;

	res->svc = p->svc;
	e = flow_hit_fast(&w->flow_ix, &p->key, p->hint, now);
	if (__builtin_expect(e == NULL, 0))
		e = flow_lookup_hint(w->flows, &p->key, p->hash, p->hint, now, &dir);
	if (__builtin_expect(e != NULL, 1)) {
		/*
		 * Only line 0 of the entry is read here. A generation set in this
		 * state for this key implies this service (the key holds the VIP,
		 * port and protocol, and the state maps them to one service), so
		 * svc_idx (line 1) is not compared. Bounds checked too: a generation
		 * could repeat after 2^32 states.
		 */
		if (__builtin_expect(e->state_gen == st->gen && dir == FLOW_DIR_FWD &&
					     e->backend_idx < svc->n_backends,
				     1))
			bi = e->backend_idx;
		else if (dir != FLOW_DIR_FWD) /* the key is a nat flow's reply key */
			return fwd_drop(w, res, FWD_DROP_NAT_CONFLICT);
		else
			e = fwd_revalidate(st, w, svc, p->svc, e, &bi);
	}
	if (e == NULL) {
		e = fwd_new_flow(st, w, svc, p, now, res, &bi);
		if (e == NULL)
			return FWD_DROP;
		created = 1;
	}

	const struct fwd_backend *be = &svc->backends[bi];
	if (__builtin_expect(!be->mac_ok, 0))
		return fwd_drop(w, res, FWD_DROP_NO_NEIGHBOUR);
	if (p->key.proto == IPPROTO_TCP)
		flow_track_tcp(e, p->tcp_flags, FLOW_DIR_FWD, now);
	else
		flow_touch(e, now);

	uint32_t len = b->len;
	if (svc->mode != FWD_MODE_DSR) {
		/*
		 * nat on a common IPv4 frame inline, by the backend's prepared
		 * rewrite; the rest (IPv6, tunnel) out of line. No family checks:
		 * fwd_check_service gave a nat service a node address and backends
		 * of its VIP's family, which is the packet's. The prepared rewrite
		 * also holds: the packet's destination is the VIP (stage 1 matched
		 * it exactly) and the flow's SNAT address is node_v4
		 * (fwd_revalidate removes a flow whose address is not).
		 */
		if (svc->mode == FWD_MODE_NAT && p->fast_ok && !p->fast.v6)
			rw_nat4_frame(b->data, p->fast.l3_off, p->fast.l4_off, p->fast.l4_proto,
				      &be->nat4, e->snat_port);
		else if (fwd_rewrite_l3(st, svc, be, e, b, p) < 0)
			return fwd_drop(w, res, FWD_DROP_REWRITE);
	}
	fwd_set_macs(b->data, be->mac, st->port_mac);

	struct fwd_counter *sc = &cblk[svc->counter];
	struct fwd_counter *bc = &cblk[be->counter];
	fwd_count(sc, len);
	fwd_count(bc, len);
	if (created) {
		sc->new_flows++;
		bc->new_flows++;
	}
	res->backend = bi;
	res->verdict = FWD_TX;
	w->tx_pkts++;
	return FWD_TX;
}

/*
 * Stage 3 for a reply to a node address: the NAT flow it belongs to,
 * rewritten back. Out of line, but called straight from fwd_finish: no
 * frame of fwd_finish_other's size for the most common packet after those
 * to a VIP.
 */
static __attribute__((noinline)) int fwd_reverse(const struct fwd_state *st, struct fwd_worker *w,
						 struct fwd_counter *cblk, struct rw_buf *b,
						 struct fwd_pkt *p, uint64_t now, struct fwd_result *res)
{
	int dir = FLOW_DIR_REV;
	struct flow_entry *e = flow_hit_rev_fast(&w->flow_ix, &p->key, p->hint, now);

	if (__builtin_expect(e == NULL, 0))
		e = flow_lookup_hint(w->flows, &p->key, p->hash, p->hint, now, &dir);
	if (e == NULL || dir != FLOW_DIR_REV)
		return fwd_drop(w, res, FWD_DROP_NO_REVERSE_FLOW);
	if (!st->gateway_ok) /* the next hop towards clients is not resolved (yet) */
		return fwd_drop(w, res, FWD_DROP_NO_NEIGHBOUR);
	if (fwd_nat(b, p, &e->key.dst, e->key.dport, &e->key.src, e->key.sport) < 0)
		return fwd_drop(w, res, FWD_DROP_REWRITE);
	if (p->key.proto == IPPROTO_TCP)
		flow_track_tcp(e, p->tcp_flags, FLOW_DIR_REV, now);
	else
		flow_touch(e, now);
	fwd_set_macs(b->data, st->gateway_mac, st->port_mac);

	/* Attribute to the service and backend of the current state, if still there. */
	if (e->svc_idx < st->n_services && e->state_gen == st->gen) {
		const struct fwd_service *svc = &st->services[e->svc_idx];
		uint32_t len = b->len;
		fwd_count_reply(&cblk[svc->counter], len);
		if (e->backend_idx < svc->n_backends)
			fwd_count_reply(&cblk[svc->backends[e->backend_idx].counter], len);
		res->svc = e->svc_idx;
		res->backend = e->backend_idx;
	}
	res->verdict = FWD_TX;
	w->tx_pkts++;
	return FWD_TX;
}

/* Stage 3 for everything but a packet to a VIP or a nat reply. */
static __attribute__((noinline)) int fwd_finish_other(const struct fwd_state *st,
						      struct fwd_worker *w, struct rw_buf *b,
						      struct fwd_pkt *p, struct fwd_result *res)
{
	struct pkt_info pi;

	switch (p->kind) {
	case FWD_K_ARP:
		fwd_pi(b, p, &pi);
		return fwd_arp(st, w, b, &pi, res);
	case FWD_K_ECHO:
		fwd_pi(b, p, &pi);
		return fwd_echo(st, w, b, &pi, res);
	case FWD_K_NS:
		fwd_pi(b, p, &pi);
		return fwd_ns(st, w, b, &pi, res);
	case FWD_K_CONTROL:
		w->to_control++;
		res->verdict = FWD_CONTROL;
		return FWD_CONTROL;
	default:
		return fwd_drop(w, res, p->drop);
	}
}

/* cblk: this worker's counter block, fwd_counter_of(st, w->id, 0). */
static inline __attribute__((always_inline)) int
fwd_finish(const struct fwd_state *st, struct fwd_worker *w, struct fwd_counter *cblk,
	   struct rw_buf *b, struct fwd_pkt *p, uint64_t now, struct fwd_result *res)
{
	res->svc = FWD_NONE;
	res->backend = FWD_NONE;
	res->drop = 0;
	if (__builtin_expect(p->kind == FWD_K_VIP, 1))
		return fwd_vip(st, w, cblk, b, p, now, res);
	if (p->kind == FWD_K_REVERSE)
		return fwd_reverse(st, w, cblk, b, p, now, res);
	return fwd_finish_other(st, w, b, p, res);
}

int fwd_packet(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *b, uint64_t now,
	       struct fwd_result *res)
{
	struct fwd_pkt p;

	struct fwd_vip_memo memo = {0, 0, FWD_NONE};

	w->rx_pkts++;
	fwd_classify(st, b, &p, &memo);
	return fwd_finish(st, w, fwd_counter_of(st, w->id, 0), b, &p, now, res);
}

/*
 * Stage 2 of a packet runs this many packets behind its stage 1, inside the
 * stage-1 loop: the bucket has had that many classifications' time to
 * arrive (a DRAM latency, 150-250 ns on the machines we measure on, is about
 * 15-20 of them), and the entry loads start early and spread out instead of
 * queueing all at once behind the core's few outstanding-miss slots.
 * bench_fwd, dsr at 1M flows on a quiet machine, medians of 3: lag 8 52 ns,
 * 12 50.4, 16 49.7, 20 48.5, 24 49.6, 28 52.2; "all of stage 2 after all of
 * stage 1" and interleaving stage 3 as well were both slower.
 */
#define FWD_STAGE2_LAG 20

/*
 * A packet to a nat service whose key has no candidate in its bucket is
 * almost surely a new flow, which stage 3 will give a SNAT port and a
 * reverse key: that key's bucket is one more cache miss, after everything
 * else the flow needed was loaded ahead. Predict it now: the backend by the
 * table (what fwd_new_flow will pick), the port the pool will hand out to
 * the k-th new nat flow of this burst (snat_peek), and request the bucket.
 * A wrong guess (a flow that was not new, a port freed meanwhile) only
 * loads a line for nothing. IPv4 common frames only.
 */
static __attribute__((noinline)) void fwd_prefetch_reverse(const struct fwd_state *st,
							   struct fwd_worker *w,
							   const struct fwd_pkt *p, uint32_t k)
{
	const struct fwd_service *svc = &st->services[p->svc];
	const struct flow_key *key = &p->key;
	uint16_t port;

	if (!p->fast_ok || p->fast.v6 || w->snat_v4 == NULL || snat_peek(w->snat_v4, k, &port) < 0)
		return;
	uint32_t bi = maglev_lookup(&svc->table, fwd_flow_hash(st->hash_seed, &key->src, &key->dst,
								key->sport, key->dport, key->proto));
	if (bi == MAGLEV_NONE)
		return;
	const struct fwd_backend *be = &svc->backends[bi];
	flow_prefetch(&w->flow_ix,
		      flow_hash_v4(be->addr.b, st->node_v4.b, be->port, port, key->proto));
}

/*
 * Stage 1 for a nat reply: its SNAT port's reference (snat_set_ref
 * in fwd_nat_setup) names its flow entry, so both its lines are requested
 * now, without the bucket: a reply then costs the same two cache misses as
 * a packet to a VIP, and one of them starts a stage earlier. The reference
 * is a hint, checked in stage 3 like one from a bucket (a port freed and
 * handed out again, a reply in the burst that sets the flow up). Without
 * one, the bucket, as for any key.
 */
static inline void fwd_prefetch_reply(struct fwd_worker *w, struct fwd_pkt *p)
{
	uint32_t r = snat_ref(p->key.dst.family == ADDR_V4 ? &w->snat_refs4 : &w->snat_refs6,
			      p->key.dport);

	if (r != SNAT_REF_NONE) {
		p->hint = (r & FLOW_REF_IDX) | FLOW_REF_REV;
		flow_prefetch_line(&w->flow_ix.ent[r & FLOW_REF_IDX], FLOW_REF_REV);
	} else {
		flow_prefetch(&w->flow_ix, p->hash);
	}
}

static inline void fwd_prefetch_entry(struct fwd_worker *w, struct fwd_pkt *p)
{
	if (p->kind == FWD_K_VIP) /* line 0 holds all a hit reads, nat included */
		p->hint = flow_prefetch_entry(&w->flow_ix, p->hash, 0);
	else if (p->kind == FWD_K_REVERSE && p->hint == FLOW_HINT_NONE) /* no port reference */
		p->hint = flow_prefetch_entry(&w->flow_ix, p->hash, 1);
}

void fwd_burst(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *bufs, unsigned n,
	       uint64_t now, struct fwd_result *res)
{
	struct fwd_pkt p[FWD_BURST_MAX];

	if (n > FWD_BURST_MAX)
		n = FWD_BURST_MAX;
	w->rx_pkts += n;
	/*
	 * Three stages, so that the two dependent cache misses of each flow
	 * lookup (its bucket, then its entry) overlap with work on the other
	 * packets of the burst instead of stalling one packet at a time:
	 *   1. parse and classify every packet; request its flow bucket (a
	 *      nat reply whose SNAT port names its entry: both entry lines
	 *      instead, fwd_prefetch_reply);
	 *   2. FWD_STAGE2_LAG packets behind stage 1: read the bucket and
	 *      request the entry its signature points to (line 1 too for a
	 *      reply);
	 *   3. in order, the full decision, whose flow lookup finds bucket and
	 *      entry in the cache.
	 * The lookups themselves happen in stage 3, in packet order, so a packet
	 * sees every change the packets before it made to the table (a new
	 * flow's second packet, a nat flow's reply in the same burst): stages 1
	 * and 2 only load memory.
	 */
	struct fwd_vip_memo memo = {0, 0, FWD_NONE};
	unsigned s2 = 0; /* packets through stage 2 */
	for (unsigned i = 0; i < n; i++) {
		fwd_classify(st, &bufs[i], &p[i], &memo);
		if (p[i].kind == FWD_K_VIP)
			flow_prefetch(&w->flow_ix, p[i].hash);
		else if (p[i].kind == FWD_K_REVERSE)
			fwd_prefetch_reply(w, &p[i]);
		if (i >= FWD_STAGE2_LAG)
			fwd_prefetch_entry(w, &p[s2++]);
	}
	while (s2 < n)
		fwd_prefetch_entry(w, &p[s2++]);
	/*
	 * Packets to a VIP without a candidate in their bucket: new flows, most
	 * likely. For nat ones, request the bucket their reverse key will go to
	 * (fwd_prefetch_reverse); a separate pass, so that the stage-2 loop of
	 * established traffic stays as it was.
	 */
	for (unsigned i = 0, k = 0; i < n; i++)
		if (p[i].hint == FLOW_HINT_NONE && p[i].kind == FWD_K_VIP &&
		    st->services[p[i].svc].mode == FWD_MODE_NAT)
			fwd_prefetch_reverse(st, w, &p[i], k++);
	struct fwd_counter *cblk = fwd_counter_of(st, w->id, 0);
	for (unsigned i = 0; i < n; i++)
		fwd_finish(st, w, cblk, &bufs[i], &p[i], now, &res[i]);
}
