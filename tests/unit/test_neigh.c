/* Unit tests for controlplane/neigh: resolution, retries, aging, static entries, capacity, deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/neigh.h"
#include "dataplane/addr.h"
#include "dataplane/csum.h"
#include "dataplane/pkt.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* splitmix64: fixed seeds only, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct addr v4(uint32_t host_order)
{
	struct addr a;
	uint8_t b[4] = {(uint8_t)(host_order >> 24), (uint8_t)(host_order >> 16),
			(uint8_t)(host_order >> 8), (uint8_t)host_order};
	addr_set_v4(&a, b);
	return a;
}

static void mac_of(uint32_t n, uint8_t mac[6])
{
	mac[0] = 0x02; /* locally administered, unicast */
	mac[1] = 0;
	mac[2] = (uint8_t)(n >> 24);
	mac[3] = (uint8_t)(n >> 16);
	mac[4] = (uint8_t)(n >> 8);
	mac[5] = (uint8_t)n;
}

/* Records the ARP requests neigh_tick asks for. */
struct reqlog {
	unsigned n;
	struct addr last[64];
};

static void record(void *ctx, const struct addr *a)
{
	struct reqlog *r = ctx;
	if (r->n < 64)
		r->last[r->n] = *a;
	r->n++;
}

static unsigned requests_for(const struct reqlog *r, const struct addr *a)
{
	unsigned k = 0;
	for (unsigned i = 0; i < r->n && i < 64; i++)
		k += addr_eq(&r->last[i], a);
	return k;
}

/* Re-parse a changed ND frame (NEIGH_NS_FRAME_LEN bytes) and recompute its ICMPv6 checksum. */
static void refill(uint8_t *frame, struct pkt_info *pi)
{
	assert_int_equal(pkt_parse(frame, NEIGH_NS_FRAME_LEN, pi), 0);
	assert_int_equal(
	    csum_l4_fill(&pi->src, &pi->dst, IPPROTO_ICMPV6, frame + pi->l4_off, pi->l4_len), 0);
}

static struct addr v6(const char *text)
{
	struct addr a;
	assert_int_equal(addr_parse(text, &a), 0);
	return a;
}

static void test_create_args(void **state)
{
	(void)state;
	assert_null(neigh_create(0, SEC, MS));
	assert_null(neigh_create(8, 0, MS));
	assert_null(neigh_create(8, SEC, 0));
	assert_null(neigh_create((1u << 20) + 1, SEC, MS));
	struct neigh_table *t = neigh_create(8, SEC, MS);
	assert_non_null(t);
	assert_int_equal(neigh_count(t), 0);
	assert_int_equal(neigh_set_timers(t, 0, MS), -EINVAL);
	neigh_destroy(t);
	neigh_destroy(NULL);
}

static void test_resolve_and_retry(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(16, 60 * SEC, 500 * MS);
	struct addr be = v4(0x0a630015), gw = v4(0x0a63000a);
	struct addr want[2] = {be, gw};
	struct reqlog r = {0};
	uint8_t mac[6], got[6];

	assert_int_equal(neigh_set_wanted(t, want, 2, 1000), 0);
	assert_int_equal(neigh_count(t), 2);
	assert_int_equal(neigh_lookup(t, &be, got), 0);

	/* Both requested at once, then not again before the retry interval. */
	assert_int_equal(neigh_tick(t, 1000, record, &r, NULL), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(requests_for(&r, &be), 1);
	assert_int_equal(requests_for(&r, &gw), 1);
	neigh_tick(t, 1000 + 499 * MS, record, &r, NULL);
	assert_int_equal(r.n, 2);
	neigh_tick(t, 1000 + 500 * MS, record, &r, NULL);
	assert_int_equal(r.n, 4);

	/* The answer resolves it: a change the caller must publish. */
	mac_of(21, mac);
	assert_int_equal(neigh_learn(t, &be, mac, 2 * SEC, 0), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	assert_memory_equal(got, mac, 6);
	/* The same again is only a refresh; a new MAC is a change. */
	assert_int_equal(neigh_learn(t, &be, mac, 3 * SEC, 0), 0);
	mac_of(99, mac);
	assert_int_equal(neigh_learn(t, &be, mac, 3 * SEC, 0), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	assert_memory_equal(got, mac, 6);

	/* The resolved address is no longer requested; the other one still is. */
	r.n = 0;
	neigh_tick(t, 4 * SEC, record, &r, NULL);
	assert_int_equal(requests_for(&r, &be), 0);
	assert_int_equal(requests_for(&r, &gw), 1);
	neigh_destroy(t);
}

static void test_learn_rules(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(16, 60 * SEC, 500 * MS);
	struct addr a = v4(0x0a630063);
	uint8_t mac[6], got[6];
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
	static const uint8_t zero[6];
	struct addr none;

	memset(&none, 0, sizeof(none));
	mac_of(7, mac);
	/* RFC 826: an unknown sender is added only when the packet was for us. */
	assert_int_equal(neigh_learn(t, &a, mac, SEC, 0), 0);
	assert_int_equal(neigh_count(t), 0);
	/* Added, but nothing forwards to it: no rebuild needed. */
	assert_int_equal(neigh_learn(t, &a, mac, SEC, 1), 0);
	assert_int_equal(neigh_count(t), 1);
	assert_int_equal(neigh_lookup(t, &a, got), 1);

	assert_int_equal(neigh_learn(t, &a, bcast, SEC, 1), -EINVAL);
	assert_int_equal(neigh_learn(t, &a, mcast, SEC, 1), -EINVAL);
	assert_int_equal(neigh_learn(t, &a, zero, SEC, 1), -EINVAL);
	assert_int_equal(neigh_learn(t, &none, mac, SEC, 1), -EINVAL);
	assert_int_equal(neigh_add_static(t, &a, bcast), -EINVAL);
	assert_int_equal(neigh_set_wanted(t, &none, 1, SEC), -EINVAL);
	assert_int_equal(neigh_lookup(t, &none, got), 0);
	/* The bad calls changed nothing. */
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_memory_equal(got, mac, 6);

	/* Becoming wanted when already resolved: usable at once, and no request. */
	struct reqlog r = {0};
	assert_int_equal(neigh_set_wanted(t, &a, 1, 2 * SEC), 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	neigh_tick(t, 2 * SEC, record, &r, NULL);
	assert_int_equal(r.n, 0);
	neigh_destroy(t);
}

static void test_aging_wanted(void **state)
{
	(void)state;
	const uint64_t timeout = 10 * SEC, retry = SEC;
	struct neigh_table *t = neigh_create(16, timeout, retry);
	struct addr a = v4(0x0a630016);
	uint8_t mac[6], got[6];
	struct reqlog r = {0};

	mac_of(22, mac);
	assert_int_equal(neigh_set_wanted(t, &a, 1, 0), 0);
	assert_int_equal(neigh_learn(t, &a, mac, 0, 0), 1);

	/* First half of the lifetime: silent. */
	for (uint64_t now = 0; now < timeout / 2; now += retry / 2)
		assert_int_equal(neigh_tick(t, now, record, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	/* Second half: re-confirmation requests while the MAC stays usable. */
	assert_int_equal(neigh_tick(t, timeout / 2, record, &r, NULL), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	/* The neighbour answers: the entry lives on without a change. */
	assert_int_equal(neigh_learn(t, &a, mac, timeout / 2 + 1, 0), 0);
	assert_int_equal(neigh_tick(t, timeout + 1, record, &r, NULL), 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);

	/* Now it stops answering: lost exactly once, at timeout after the last answer. */
	uint64_t last = timeout / 2 + 1;
	int lost = 0;
	for (uint64_t now = last; now < last + timeout; now += retry)
		lost += neigh_tick(t, now, record, &r, NULL);
	assert_int_equal(lost, 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_int_equal(neigh_tick(t, last + timeout, record, &r, NULL), 1);
	assert_int_equal(neigh_lookup(t, &a, got), 0);
	assert_int_equal(neigh_tick(t, last + timeout + 1, record, &r, NULL), 0);
	/* Still wanted: still asked for. */
	unsigned before = r.n;
	neigh_tick(t, last + timeout + retry, record, &r, NULL);
	assert_int_equal(r.n, before + 1);
	neigh_destroy(t);
}

static void test_aging_unwanted(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(16, 10 * SEC, SEC);
	struct addr a = v4(0x0a630050);
	uint8_t mac[6];
	struct reqlog r = {0};

	mac_of(80, mac);
	assert_int_equal(neigh_learn(t, &a, mac, SEC, 1), 0);
	/* Nobody needs it: never requested, forgotten at timeout, no rebuild. */
	assert_int_equal(neigh_tick(t, 10 * SEC, record, &r, NULL), 0);
	assert_int_equal(neigh_count(t), 1);
	assert_int_equal(neigh_tick(t, 11 * SEC, record, &r, NULL), 0);
	assert_int_equal(neigh_count(t), 0);
	assert_int_equal(r.n, 0);

	/* An unresolved address that stops being wanted is dropped at once. */
	assert_int_equal(neigh_set_wanted(t, &a, 1, 12 * SEC), 0);
	assert_int_equal(neigh_count(t), 1);
	assert_int_equal(neigh_set_wanted(t, NULL, 0, 12 * SEC), 0);
	assert_int_equal(neigh_count(t), 0);
	neigh_destroy(t);
}

static void test_static(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(16, 10 * SEC, SEC);
	struct addr a = v4(0x0a630017);
	uint8_t smac[6], other[6], got[6];
	struct reqlog r = {0};

	mac_of(23, smac);
	mac_of(77, other);
	assert_int_equal(neigh_add_static(t, &a, smac), 0);
	assert_int_equal(neigh_set_wanted(t, &a, 1, 0), 0);
	/* ARP cannot override it, it never ages and is never requested. */
	assert_int_equal(neigh_learn(t, &a, other, 0, 1), 0);
	for (uint64_t now = 0; now <= 100 * SEC; now += SEC)
		assert_int_equal(neigh_tick(t, now, record, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_memory_equal(got, smac, 6);

	/* Reload without the static entry: the wanted address goes back to ARP. */
	neigh_clear_static(t);
	assert_int_equal(neigh_lookup(t, &a, got), 0);
	neigh_tick(t, 101 * SEC, record, &r, NULL);
	assert_int_equal(r.n, 1);
	assert_int_equal(neigh_learn(t, &a, other, 101 * SEC, 0), 1);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_memory_equal(got, other, 6);

	/* A static entry nobody wants disappears with clear_static. */
	struct addr b = v4(0x0a630099);
	assert_int_equal(neigh_add_static(t, &b, smac), 0);
	assert_int_equal(neigh_count(t), 2);
	neigh_clear_static(t);
	assert_int_equal(neigh_count(t), 1);
	assert_int_equal(neigh_lookup(t, &b, got), 0);
	neigh_destroy(t);
}

static void test_capacity(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(4, 10 * SEC, SEC);
	uint8_t mac[6], got[6];
	struct addr want[5];

	/* Fill with learned, unwanted entries; the oldest confirmed goes first. */
	for (uint32_t i = 0; i < 4; i++) {
		struct addr a = v4(0x0a000001 + i);
		mac_of(i + 1, mac);
		assert_int_equal(neigh_learn(t, &a, mac, (i + 1) * SEC, 1), 0);
	}
	struct addr extra = v4(0x0a0000ff);
	mac_of(0xff, mac);
	assert_int_equal(neigh_learn(t, &extra, mac, 5 * SEC, 1), 0);
	assert_int_equal(neigh_count(t), 4);
	assert_int_equal(neigh_lookup(t, &extra, got), 0); /* no room: ignored */

	want[0] = v4(0x0b000001);
	assert_int_equal(neigh_set_wanted(t, want, 1, 6 * SEC), 0);
	assert_int_equal(neigh_count(t), 4);
	struct addr oldest = v4(0x0a000001);
	assert_int_equal(neigh_lookup(t, &oldest, got), 0);

	/* More wanted addresses than capacity: what fits, and -ENOSPC. */
	for (uint32_t i = 0; i < 5; i++)
		want[i] = v4(0x0c000001 + i);
	assert_int_equal(neigh_set_wanted(t, want, 5, 7 * SEC), -ENOSPC);
	assert_int_equal(neigh_count(t), 4);
	neigh_destroy(t);
}

/*
 * Many entries in a table at its maximum load, aged out in random subsets:
 * after every round, exactly the entries confirmed recently enough are found
 * (this exercises backward-shift deletion across long probe runs).
 */
static void test_random_aging(void **state)
{
	(void)state;
	enum { CAP = 512, ROUNDS = 200 };
	const uint64_t timeout = 100 * SEC;
	struct neigh_table *t = neigh_create(CAP, timeout, SEC);
	uint64_t seed = 42;
	uint64_t confirmed[CAP];
	uint8_t present[CAP];
	uint64_t now = timeout; /* so "now - timeout" never underflows */

	memset(present, 0, sizeof(present));
	for (int round = 0; round < ROUNDS; round++) {
		/* Confirm a random subset at a random recent time. */
		for (uint32_t i = 0; i < CAP; i++) {
			if (rng_next(&seed) % 3 != 0)
				continue;
			struct addr a = v4(0x0a000000 + i * 7919);
			uint8_t mac[6];
			uint64_t when = now - rng_next(&seed) % timeout;
			if (present[i] && when < confirmed[i])
				when = confirmed[i];
			mac_of(i + 1, mac);
			assert_int_equal(neigh_learn(t, &a, mac, when, 1), 0);
			confirmed[i] = when;
			present[i] = 1;
		}
		now += rng_next(&seed) % (timeout / 2);
		assert_int_equal(neigh_tick(t, now, NULL, NULL, NULL), 0);
		uint32_t expect = 0;
		for (uint32_t i = 0; i < CAP; i++) {
			if (present[i] && now - confirmed[i] >= timeout)
				present[i] = 0;
			expect += present[i];
			struct addr a = v4(0x0a000000 + i * 7919);
			uint8_t got[6], mac[6];
			int found = neigh_lookup(t, &a, got);
			assert_int_equal(found, present[i]);
			if (found) {
				mac_of(i + 1, mac);
				assert_memory_equal(got, mac, 6);
			}
		}
		assert_int_equal(neigh_count(t), expect);
	}
	neigh_destroy(t);
}

struct visit {
	unsigned n, incomplete, reachable, stat;
};

static void visit_fn(void *ctx, const struct neigh_entry_info *e)
{
	struct visit *v = ctx;
	v->n++;
	v->incomplete += e->state == NEIGH_INCOMPLETE;
	v->reachable += e->state == NEIGH_REACHABLE;
	v->stat += e->state == NEIGH_STATIC;
}

static void test_foreach(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(8, 10 * SEC, SEC);
	struct addr a = v4(1), b = v4(2), c = v4(3);
	struct addr want[2] = {a, b};
	uint8_t mac[6];
	struct visit v = {0};

	mac_of(1, mac);
	assert_int_equal(neigh_set_wanted(t, want, 2, 0), 0);
	assert_int_equal(neigh_learn(t, &a, mac, 0, 0), 1);
	assert_int_equal(neigh_add_static(t, &c, mac), 0);
	neigh_foreach(t, visit_fn, &v);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.incomplete, 1);
	assert_int_equal(v.reachable, 1);
	assert_int_equal(v.stat, 1);
	neigh_destroy(t);
}


/*
 * The neighbour solicitation is valid ND as the parser and RFC 4861 see it:
 * to the target's solicited-node group, hop limit 255, checksum right, our
 * MAC as source link-layer address; neigh_nd_parse learns the sender from
 * it. The same frame turned into an advertisement teaches the target's MAC;
 * broken ones are refused.
 */
static void test_nd_frames(void **state)
{
	(void)state;
	static const uint8_t meb[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
	static const uint8_t tb[16] = {0x20, 0x01, 0x0d, 0xb8, [13] = 0xab, 0xcd, 0x11};
	static const uint8_t snm[16] = {0xff, 0x02, [11] = 1, 0xff, 0xab, 0xcd, 0x11};
	static const uint8_t grp[6] = {0x33, 0x33, 0xff, 0xab, 0xcd, 0x11};
	uint8_t frame[NEIGH_NS_FRAME_LEN], mac[6], got[6];
	struct addr me, target, who, v4a = v4(0x0a630002);
	struct pkt_info pi;
	unsigned fl = 99;

	addr_set_v6(&me, meb);
	addr_set_v6(&target, tb);
	mac_of(2, mac);
	assert_int_equal(neigh_ns_request(frame, sizeof(frame) - 1, mac, &me, &target), -EINVAL);
	assert_int_equal(neigh_ns_request(frame, sizeof(frame), mac, &v4a, &target), -EINVAL);
	assert_int_equal(neigh_ns_request(frame, sizeof(frame), mac, &me, &v4a), -EINVAL);
	assert_int_equal(neigh_ns_request(frame, sizeof(frame), mac, &me, &target),
			 NEIGH_NS_FRAME_LEN);
	assert_int_equal(pkt_parse(frame, NEIGH_NS_FRAME_LEN, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_IPV6);
	assert_int_equal(pi.l4_proto, IPPROTO_ICMPV6);
	assert_int_equal(pi.icmp_type, 135);
	assert_int_equal(pi.ttl, 255);
	assert_true(addr_eq(&pi.src, &me));
	assert_memory_equal(pi.dst.b, snm, 16);
	assert_memory_equal(frame, grp, 6);
	assert_memory_equal(frame + 6, mac, 6);
	assert_int_equal(csum_l4_verify(&pi.src, &pi.dst, IPPROTO_ICMPV6, frame + pi.l4_off,
					pi.l4_len),
			 1);
	assert_memory_equal(frame + pi.l4_off + 8, tb, 16);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_true(addr_eq(&who, &me));
	assert_memory_equal(got, mac, 6);
	/* a solicitation's source link-layer address replaces a cached one (RFC 4861 7.2.3) */
	assert_int_equal(fl, NEIGH_ND_OVERRIDE);

	/* as an advertisement from the target (S set, its MAC as target link-layer address) */
	uint8_t *icmp = frame + pi.l4_off;
	uint8_t tmac[6];
	mac_of(9, tmac);
	icmp[0] = 136;
	icmp[4] = 0x60;
	icmp[24] = 2;
	memcpy(icmp + 26, tmac, 6);
	/* (sent to us: a solicited advertisement goes to the solicitor's unicast address) */
	memcpy(frame + 14 + 24, meb, 16);
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_true(addr_eq(&who, &target));
	assert_memory_equal(got, tmac, 6);
	assert_int_equal(fl, NEIGH_ND_SOLICITED | NEIGH_ND_OVERRIDE);
	/* a proxy's answer: Override clear (and R, which says nothing about the MAC) */
	icmp[4] = 0xc0;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_SOLICITED);
	/* an unsolicited announcement of a new MAC: Override set, Solicited clear */
	icmp[4] = 0x20;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_OVERRIDE);
	icmp[4] = 0x60;
	/* without the option: nothing learned */
	icmp[24] = 14;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 0);
	/* invalid: a zero-length option, a hop limit that is not 255, a multicast target */
	icmp[24] = 2;
	icmp[25] = 0;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	icmp[25] = 1;
	refill(frame, &pi);
	frame[14 + 7] = 64; /* (not covered by the checksum) */
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	frame[14 + 7] = 255;
	icmp[8] = 0xff;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	/* not ND at all */
	uint8_t arp[NEIGH_ARP_FRAME_LEN];
	struct addr t4 = v4(0x0a630015);
	assert_int_equal(neigh_arp_request(arp, sizeof(arp), mac, &v4a, &t4), NEIGH_ARP_FRAME_LEN);
	assert_int_equal(pkt_parse(arp, sizeof(arp), &pi), 0);
	assert_int_equal(neigh_nd_parse(arp, &pi, &who, got, &fl), -EINVAL);
}

/*
 * Regression (found by tests/e2e/ipv6.sh): a router proxying ND for a backend
 * answers fulcrumd's solicitations with its own MAC and Override clear, a
 * moment after the backend itself. Taking that MAC sent the backend's flows
 * to the router, flip-flopping on every re-confirmation. RFC 4861 7.2.5:
 * without Override, a different MAC must not replace a resolved entry.
 */
static void test_keep_without_override(void **state)
{
	(void)state;
	static const uint8_t beb[16] = {0xfd, 0x00, 0x00, 0x99, [15] = 0x21};
	struct neigh_table *t = neigh_create(16, 2 * SEC, 200 * MS);
	struct addr be, other;
	uint8_t owner[6], proxy[6], moved[6], got[6];

	addr_set_v6(&be, beb);
	other = be;
	other.b[15] = 0x22;
	mac_of(21, owner);
	mac_of(10, proxy);
	mac_of(99, moved);
	assert_int_equal(neigh_set_wanted(t, &be, 1, 0), 0);

	/* Unresolved: even a proxy's answer resolves it (7.2.5, INCOMPLETE). */
	assert_int_equal(neigh_learn(t, &be, proxy, 10 * MS, NEIGH_LEARN_CREATE | NEIGH_LEARN_KEEP),
			 1);
	/* The owner's answer (Override set) takes it over. */
	assert_int_equal(neigh_learn(t, &be, owner, 20 * MS, NEIGH_LEARN_CREATE), 1);
	/* The proxy again: ignored, the owner keeps its entry. */
	assert_int_equal(neigh_learn(t, &be, proxy, 30 * MS, NEIGH_LEARN_CREATE | NEIGH_LEARN_KEEP),
			 0);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	assert_memory_equal(got, owner, 6);
	/* Ignored means not confirmed either: the owner is asked again from half the lifetime. */
	struct reqlog r = {0};
	neigh_tick(t, 20 * MS + SEC, record, &r, NULL);
	assert_int_equal(requests_for(&r, &be), 1);
	/* The owner's own answer without Override (Linux, to a unicast solicitation) refreshes. */
	assert_int_equal(neigh_learn(t, &be, owner, 20 * MS + SEC, NEIGH_LEARN_KEEP), 0);
	r.n = 0;
	neigh_tick(t, 20 * MS + SEC + 500 * MS, record, &r, NULL);
	assert_int_equal(r.n, 0);
	/* With no answer at all, the entry expires as usual. */
	assert_int_equal(neigh_tick(t, 20 * MS + 3 * SEC + 1, NULL, NULL, NULL), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 0);
	/* A real move (Override set, unsolicited) replaces the MAC. */
	assert_int_equal(neigh_learn(t, &be, owner, 4 * SEC, 0), 1);
	assert_int_equal(neigh_learn(t, &be, moved, 5 * SEC, NEIGH_LEARN_UNCONFIRMED), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	assert_memory_equal(got, moved, 6);
	/* KEEP never creates: an unknown address stays unknown without CREATE. */
	assert_int_equal(neigh_learn(t, &other, proxy, 5 * SEC, NEIGH_LEARN_KEEP), 0);
	assert_int_equal(neigh_lookup(t, &other, got), 0);
	neigh_destroy(t);
}

/* The request frame is what the project's own parser reads as an ARP request. */
static void test_arp_request_frame(void **state)
{
	(void)state;
	uint8_t frame[NEIGH_ARP_FRAME_LEN + 4], mac[6];
	struct addr me = v4(0x0a630002), target = v4(0x0a630015), v6;
	struct pkt_info pi;
	static const uint8_t v6b[16] = {0x20, 0x01, 0x0d, 0xb8};

	mac_of(2, mac);
	addr_set_v6(&v6, v6b);
	assert_int_equal(neigh_arp_request(frame, NEIGH_ARP_FRAME_LEN - 1, mac, &me, &target),
			 -EINVAL);
	assert_int_equal(neigh_arp_request(frame, sizeof(frame), mac, &v6, &target), -EINVAL);
	assert_int_equal(neigh_arp_request(frame, sizeof(frame), mac, &me, &v6), -EINVAL);
	assert_int_equal(neigh_arp_request(frame, sizeof(frame), mac, &me, &target),
			 NEIGH_ARP_FRAME_LEN);
	assert_int_equal(pkt_parse(frame, NEIGH_ARP_FRAME_LEN, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_ARP);
	assert_int_equal(pi.arp_op, PKT_ARP_REQUEST);
	assert_true(addr_eq(&pi.src, &me));
	assert_true(addr_eq(&pi.dst, &target));
	assert_memory_equal(pi.arp_sha, mac, 6);
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6];
	assert_memory_equal(frame, bcast, 6);
	assert_memory_equal(frame + 6, mac, 6);
	assert_memory_equal(pi.arp_tha, zero, 6);
}

/*
 * RFC 4861 7.1.1/7.1.2 checks of neigh_nd_parse beyond the ones above, each
 * on an otherwise valid message (checksum refilled), so that each check is
 * what refuses it.
 */
static void test_nd_validity(void **state)
{
	(void)state;
	struct addr me = v6("2001:db8::2"), target = v6("2001:db8::abcd:11"), who;
	uint8_t frame[NEIGH_NS_FRAME_LEN], mac[6], tmac[6], got[6];
	struct pkt_info pi;
	unsigned fl;

	mac_of(2, mac);
	mac_of(9, tmac);
	assert_int_equal(neigh_ns_request(frame, sizeof(frame), mac, &me, &target),
			 NEIGH_NS_FRAME_LEN);
	assert_int_equal(pkt_parse(frame, sizeof(frame), &pi), 0);
	uint8_t *ip = frame + 14, *icmp = frame + pi.l4_off;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);

	/* A wrong checksum: a corrupted MAC must not be learned. */
	icmp[26] ^= 0x04;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(got[0], (uint8_t)(mac[0] ^ 0x04));
	icmp[26] ^= 0x04;
	refill(frame, &pi);
	/* ... and a checksum field of 0 is not "no checksum" in ICMPv6. */
	icmp[2] = icmp[3] = 0;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	refill(frame, &pi);

	/* code 0 only */
	icmp[1] = 1;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	icmp[1] = 0;
	/* an option that runs past the end of the message */
	icmp[25] = 2;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	icmp[25] = 1;
	refill(frame, &pi);
	/* ICMP length below 24 (a 16-byte message, the IPv6 length saying so) */
	ip[5] = 16;
	refill(frame, &pi);
	assert_int_equal(pi.l4_len, 16);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	ip[5] = 32;
	refill(frame, &pi);

	/* A duplicate-address probe (from ::, no option) to the solicited-node group: no lesson. */
	memset(ip + 8, 0, 16);
	ip[5] = 24;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 0);
	/* ... but from :: to any other destination it is invalid (7.1.1). */
	memcpy(ip + 24, me.b, 16);
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);

	/* An advertisement to all nodes: fine with Solicited clear (an announcement) ... */
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	assert_int_equal(neigh_ns_request(frame, sizeof(frame), mac, &me, &target),
			 NEIGH_NS_FRAME_LEN);
	assert_int_equal(pkt_parse(frame, sizeof(frame), &pi), 0);
	icmp = frame + pi.l4_off;
	icmp[0] = 136;
	icmp[4] = 0x20;
	icmp[24] = 2;
	memcpy(icmp + 26, tmac, 6);
	memcpy(ip + 8, target.b, 16);
	memcpy(ip + 24, all_nodes, 16);
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_true(addr_eq(&who, &target));
	assert_int_equal(fl, NEIGH_ND_OVERRIDE);
	/* ... invalid with Solicited set (7.1.2): nobody solicits by multicast. */
	icmp[4] = 0x60;
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	/* The same to a unicast destination is a normal answer. */
	memcpy(ip + 24, me.b, 16);
	refill(frame, &pi);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_SOLICITED | NEIGH_ND_OVERRIDE);
}

struct seen_info {
	uint64_t confirmed;
	unsigned n;
};

static void info_fn(void *ctx, const struct neigh_entry_info *e)
{
	struct seen_info *seen = ctx;
	seen->confirmed = e->confirmed;
	seen->n++;
}

/*
 * RFC 4861 7.2.5/7.3.1: only a solicited advertisement confirms. An
 * unsolicited one with a new MAC (Override set) moves the entry to that MAC
 * but does not extend its life; the new MAC is asked for at once.
 */
static void test_unsolicited_no_confirmation(void **state)
{
	(void)state;
	const uint64_t timeout = 10 * SEC, retry = SEC;
	struct neigh_table *t = neigh_create(16, timeout, retry);
	struct addr be = v6("fd00:99::22");
	uint8_t owner[6], moved[6], got[6];
	struct reqlog r = {0};
	int lost6 = -1;

	mac_of(22, owner);
	mac_of(99, moved);
	assert_int_equal(neigh_set_wanted(t, &be, 1, 0), 0);
	assert_int_equal(neigh_tick(t, 0, record, &r, NULL), 0);
	/* Confirmed by the answer to our solicitation at 1 s. */
	assert_int_equal(neigh_learn(t, &be, owner, SEC, 0), 1);

	/* 3 s: the backend announces a new MAC. Taken, but not a confirmation. */
	assert_int_equal(neigh_learn(t, &be, moved, 3 * SEC, NEIGH_LEARN_UNCONFIRMED), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	assert_memory_equal(got, moved, 6);
	struct seen_info seen = {0, 0};
	neigh_foreach(t, info_fn, &seen);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.confirmed, SEC);
	/* The new MAC is asked for at once (not only from half the lifetime on). */
	r.n = 0;
	neigh_tick(t, 3 * SEC, record, &r, NULL);
	assert_int_equal(requests_for(&r, &be), 1);
	/* The same announcement again, or a solicitation naming the MAC: nothing new. */
	assert_int_equal(neigh_learn(t, &be, moved, 4 * SEC, NEIGH_LEARN_UNCONFIRMED), 0);
	/* Nobody answers: it expires on the old schedule, timeout after 1 s, and as IPv6. */
	assert_int_equal(neigh_tick(t, SEC + timeout - 1, record, &r, &lost6), 0);
	assert_int_equal(lost6, 0);
	assert_int_equal(neigh_tick(t, SEC + timeout, record, &r, &lost6), 1);
	assert_int_equal(lost6, 1);
	assert_int_equal(neigh_lookup(t, &be, got), 0);

	/* An unresolved address: a hint resolves it (7.2.5, INCOMPLETE -> STALE) ... */
	assert_int_equal(neigh_learn(t, &be, moved, 20 * SEC, NEIGH_LEARN_UNCONFIRMED), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	/* ... for one lifetime from the hint at most, asked for every retry meanwhile. */
	r.n = 0;
	for (uint64_t now = 20 * SEC; now < 30 * SEC; now += retry)
		assert_int_equal(neigh_tick(t, now, record, &r, NULL), 0);
	assert_int_equal(requests_for(&r, &be), 10);
	/* A confirmation then gives a full lifetime and stops the requests until its half. */
	assert_int_equal(neigh_learn(t, &be, moved, 29 * SEC + 1, 0), 0);
	r.n = 0;
	assert_int_equal(neigh_tick(t, 30 * SEC, record, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(neigh_tick(t, 39 * SEC, record, &r, NULL), 0);
	assert_int_equal(neigh_lookup(t, &be, got), 1);
	neigh_destroy(t);
}

/* neigh_tick says how many of the lost neighbours were IPv6 (for the warning's wording). */
static void test_lost_by_family(void **state)
{
	(void)state;
	struct neigh_table *t = neigh_create(16, 10 * SEC, SEC);
	struct addr want[3] = {v4(0x0a630015), v6("fd00:99::21"), v6("fd00:99::23")};
	uint8_t mac[6];
	int lost6 = -1;

	assert_int_equal(neigh_set_wanted(t, want, 3, 0), 0);
	for (uint32_t i = 0; i < 3; i++) {
		mac_of(i + 1, mac);
		assert_int_equal(neigh_learn(t, &want[i], mac, 0, 0), 1);
	}
	assert_int_equal(neigh_tick(t, 10 * SEC, NULL, NULL, &lost6), 3);
	assert_int_equal(lost6, 2);
	assert_int_equal(neigh_tick(t, 11 * SEC, NULL, NULL, &lost6), 0);
	assert_int_equal(lost6, 0);
	neigh_destroy(t);
}

/* RFC 4291: the modified EUI-64 link-local address and solicited-node groups. */
static void test_link_local_and_groups(void **state)
{
	(void)state;
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	struct addr ll, g;

	neigh_link_local(&ll, mac);
	assert_true(addr_eq(&ll, &(struct addr){0}) == 0);
	struct addr want = v6("fe80::5054:ff:fe12:3456");
	assert_true(addr_eq(&ll, &want));
	assert_true(neigh_is_link_local(&ll));
	struct addr glob = v6("fd00:99::101");
	assert_false(neigh_is_link_local(&glob));
	assert_true(neigh_is_link_local(&(struct addr){.family = ADDR_V6, .b = {0xfe, 0xbf}}));
	assert_false(neigh_is_link_local(&(struct addr){.family = ADDR_V6, .b = {0xfe, 0xc0}}));
	struct addr four = v4(0x0a630002);
	assert_false(neigh_is_link_local(&four));

	assert_int_equal(neigh_solicited_node(&g, &glob), 0);
	want = v6("ff02::1:ff00:101");
	assert_true(addr_eq(&g, &want));
	assert_int_equal(neigh_solicited_node(&g, &ll), 0);
	want = v6("ff02::1:ff12:3456");
	assert_true(addr_eq(&g, &want));
	struct addr mc = v6("ff02::1"), unspec = v6("::");
	assert_int_equal(neigh_solicited_node(&g, &mc), -EINVAL);
	assert_int_equal(neigh_solicited_node(&g, &unspec), -EINVAL);
	assert_int_equal(neigh_solicited_node(&g, &four), -EINVAL);
}

/*
 * An MLDv2 report as RFC 3810 5.2 wants it, read back by the project's own
 * parser: to ff02::16 (33:33:00:00:00:16), hop limit 1, a Hop-by-Hop header
 * with Router Alert (MLD), ICMPv6 143, the checksum right over the
 * pseudo-header, one record of the given type and no sources per group.
 */
static void test_mld_report_frame(void **state)
{
	(void)state;
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x02};
	static const uint8_t grp_mac[6] = {0x33, 0x33, 0, 0, 0, 0x16};
	static const uint8_t hbh[8] = {58, 0, 5, 2, 0, 0, 1, 0};
	uint8_t frame[NEIGH_MLD_FRAME_LEN(NEIGH_MLD_MAX_RECORDS) + 1];
	struct addr ll, groups[3] = {v6("ff02::1:ff00:2"), v6("ff02::1:ff00:101"),
				     v6("ff02::1:ff00:102")};
	struct pkt_info pi;

	neigh_link_local(&ll, mac);
	int len = neigh_mld_report(frame, sizeof(frame), mac, &ll, NEIGH_MLD_TO_EX, groups, 3);
	assert_int_equal(len, 14 + 40 + 8 + 8 + 3 * 20);
	assert_int_equal(pkt_parse(frame, (uint32_t)len, &pi), 0);
	assert_memory_equal(frame, grp_mac, 6);
	assert_memory_equal(frame + 6, mac, 6);
	assert_int_equal(pi.l3, PKT_L3_IPV6);
	assert_int_equal(pi.ttl, 1);
	assert_int_equal(frame[14 + 6], 0); /* next header: Hop-by-Hop */
	assert_memory_equal(frame + 54, hbh, 8);
	assert_int_equal(pi.l4_proto, IPPROTO_ICMPV6);
	assert_int_equal(pi.l4_off, 14 + 40 + 8);
	assert_int_equal(pi.l4_len, 8 + 3 * 20);
	assert_int_equal(pi.icmp_type, 143);
	assert_int_equal(pi.icmp_code, 0);
	assert_true(addr_eq(&pi.src, &ll));
	struct addr dst = v6("ff02::16");
	assert_true(addr_eq(&pi.dst, &dst));
	assert_int_equal(csum_l4_verify(&pi.src, &pi.dst, IPPROTO_ICMPV6, frame + pi.l4_off,
					pi.l4_len),
			 1);
	const uint8_t *icmp = frame + pi.l4_off;
	assert_int_equal(icmp[4] | icmp[5], 0);		 /* reserved */
	assert_int_equal(icmp[6] << 8 | icmp[7], 3); /* records */
	for (int i = 0; i < 3; i++) {
		const uint8_t *rec = icmp + 8 + 20 * i;
		assert_int_equal(rec[0], NEIGH_MLD_TO_EX);
		assert_int_equal(rec[1] | rec[2] | rec[3], 0); /* no aux data, no sources */
		assert_memory_equal(rec + 4, groups[i].b, 16);
	}
	/* The unspecified source is allowed (RFC 3590, during DAD), nothing else but link-local. */
	struct addr unspec = v6("::"), glob = v6("fd00:99::2");
	assert_int_equal(
	    neigh_mld_report(frame, sizeof(frame), mac, &unspec, NEIGH_MLD_IS_EX, groups, 1),
	    NEIGH_MLD_FRAME_LEN(1));
	assert_int_equal(
	    neigh_mld_report(frame, sizeof(frame), mac, &glob, NEIGH_MLD_IS_EX, groups, 1),
	    -EINVAL);
	/* Bad arguments: no group, too many, no room, a unicast "group", a bad type. */
	assert_int_equal(
	    neigh_mld_report(frame, sizeof(frame), mac, &ll, NEIGH_MLD_IS_EX, groups, 0), -EINVAL);
	assert_int_equal(neigh_mld_report(frame, sizeof(frame), mac, &ll, NEIGH_MLD_IS_EX, groups,
					  NEIGH_MLD_MAX_RECORDS + 1),
			 -EINVAL);
	assert_int_equal(neigh_mld_report(frame, NEIGH_MLD_FRAME_LEN(3) - 1, mac, &ll,
					  NEIGH_MLD_IS_EX, groups, 3),
			 -EINVAL);
	assert_int_equal(
	    neigh_mld_report(frame, sizeof(frame), mac, &ll, NEIGH_MLD_IS_EX, &glob, 1), -EINVAL);
	assert_int_equal(neigh_mld_report(frame, sizeof(frame), mac, &ll, (enum neigh_mld_record)1,
					  groups, 1),
			 -EINVAL);
}

/* What neigh_mld_tick asked to send. */
struct mldlog {
	unsigned n;
	unsigned type[16];
	uint32_t k[16];
	struct addr first[16];
	uint32_t total;
};

static void mld_record(void *ctx, enum neigh_mld_record type, const struct addr *groups,
		       uint32_t k)
{
	struct mldlog *l = ctx;
	assert_true(k >= 1 && k <= NEIGH_MLD_MAX_RECORDS);
	for (uint32_t i = 0; i < k; i++)
		assert_int_equal(groups[i].b[0], 0xff);
	if (l->n < 16) {
		l->type[l->n] = type;
		l->k[l->n] = k;
		l->first[l->n] = groups[0];
	}
	l->n++;
	l->total += k;
}

/*
 * When reports go out: a change at once and robustness - 1 more times an
 * interval apart (joins as TO_EX, leaves as TO_IN), the whole set every
 * refresh (IS_EX); addresses sharing a solicited-node group count once.
 */
static void test_mld_schedule(void **state)
{
	(void)state;
	const uint64_t interval = SEC, refresh = 60 * SEC;
	assert_null(neigh_mld_create(0, refresh, 2));
	assert_null(neigh_mld_create(interval, 0, 2));
	assert_null(neigh_mld_create(interval, refresh, 0));
	struct neigh_mld *m = neigh_mld_create(interval, refresh, 2);
	assert_non_null(m);
	struct mldlog l = {0};

	/* Nothing to listen to (an IPv4-only node): nothing is ever sent. */
	assert_int_equal(neigh_mld_set(m, NULL, 0, 0), 0);
	assert_int_equal(neigh_mld_tick(m, 0, mld_record, &l), 0);
	assert_int_equal(neigh_mld_tick(m, 1000 * SEC, mld_record, &l), 0);
	assert_int_equal(l.n, 0);

	/* Start: node, link-local, VIP; a second VIP with the same low 24 bits; an IPv4 VIP. */
	uint64_t t0 = 1000 * SEC;
	struct addr a[5] = {v6("fd00:99::2"), v6("fe80::5054:ff:fe12:3456"), v6("fd00:99::101"),
			    v6("fd00:77::101"), v4(0x0a630064)};
	assert_int_equal(neigh_mld_set(m, a, 5, t0), 1);
	assert_int_equal(neigh_mld_count(m), 3);
	assert_int_equal(neigh_mld_set(m, a, 5, t0), 0); /* the same again: no change */
	assert_int_equal(neigh_mld_tick(m, t0, mld_record, &l), 1);
	assert_int_equal(l.type[0], NEIGH_MLD_TO_EX);
	assert_int_equal(l.k[0], 3);
	assert_int_equal(neigh_mld_tick(m, t0 + interval - 1, mld_record, &l), 0);
	assert_int_equal(neigh_mld_tick(m, t0 + interval, mld_record, &l), 1);
	assert_int_equal(l.type[1], NEIGH_MLD_TO_EX);
	assert_int_equal(l.k[1], 3);
	/* Robustness 2: two state-change reports, then quiet until the refresh. */
	for (uint64_t now = t0 + 2 * interval; now < t0 + refresh; now += interval / 2)
		assert_int_equal(neigh_mld_tick(m, now, mld_record, &l), 0);
	assert_int_equal(neigh_mld_tick(m, t0 + refresh, mld_record, &l), 1);
	assert_int_equal(l.type[2], NEIGH_MLD_IS_EX);
	assert_int_equal(l.k[2], 3);
	assert_int_equal(neigh_mld_tick(m, t0 + refresh + 1, mld_record, &l), 0);

	/* A VIP withdrawn (only fd00:77::101 kept its group alive... both go): TO_IN twice. */
	uint64_t t1 = t0 + refresh + 5 * SEC;
	assert_int_equal(neigh_mld_set(m, a, 2, t1), 1);
	assert_int_equal(neigh_mld_count(m), 2);
	l.n = 0;
	assert_int_equal(neigh_mld_tick(m, t1, mld_record, &l), 1);
	assert_int_equal(l.type[0], NEIGH_MLD_TO_IN);
	assert_int_equal(l.k[0], 1);
	struct addr g101 = v6("ff02::1:ff00:101");
	assert_true(addr_eq(&l.first[0], &g101));
	/* Back before the leave was repeated: a join again, and no second leave. */
	assert_int_equal(neigh_mld_set(m, a, 3, t1 + 1), 1);
	assert_int_equal(neigh_mld_tick(m, t1 + interval, mld_record, &l), 1);
	assert_int_equal(l.type[1], NEIGH_MLD_TO_EX);
	assert_int_equal(l.k[1], 1);
	assert_int_equal(neigh_mld_tick(m, t1 + 2 * interval, mld_record, &l), 1);
	assert_int_equal(l.type[2], NEIGH_MLD_TO_EX);
	assert_int_equal(neigh_mld_tick(m, t1 + 3 * interval, mld_record, &l), 0);
	/* The refresh keeps its own period (from t0): due at t0 + 2 refresh. */
	assert_int_equal(neigh_mld_tick(m, t0 + 2 * refresh, mld_record, &l), 1);
	assert_int_equal(l.type[3], NEIGH_MLD_IS_EX);
	assert_int_equal(l.k[3], 3);

	/* Many groups: reports of at most NEIGH_MLD_MAX_RECORDS records each. */
	enum { MANY = NEIGH_MLD_MAX_RECORDS * 2 + 5 };
	struct addr *many = calloc(MANY, sizeof(*many));
	assert_non_null(many);
	for (uint32_t i = 0; i < MANY; i++) {
		many[i] = v6("fd00:1::");
		many[i].b[13] = (uint8_t)(0x80 | i >> 8); /* no group shared with the old set */
		many[i].b[15] = (uint8_t)i;
	}
	uint64_t t2 = t0 + 2 * refresh + 10 * SEC; /* (no refresh due) */
	assert_int_equal(neigh_mld_set(m, many, MANY, t2), 1);
	l = (struct mldlog){0};
	assert_int_equal(neigh_mld_tick(m, t2, mld_record, &l), 3 + 1);
	/* MANY joins in three reports, and the three old groups left in one. */
	assert_int_equal(l.total, MANY + 3);
	assert_int_equal(l.k[0], NEIGH_MLD_MAX_RECORDS);
	assert_int_equal(l.type[3], NEIGH_MLD_TO_IN);
	free(many);
	neigh_mld_destroy(m);
	neigh_mld_destroy(NULL);
}

/*
 * The control thread answers solicitations for the node's link-local
 * address (the workers only know the configured one): the advertisement is
 * valid ND from the target, Solicited and Override set, to the solicitor;
 * for a duplicate-address probe, to all nodes with Solicited clear.
 */
static void test_na_reply(void **state)
{
	(void)state;
	static const uint8_t mymac[6] = {0x02, 0, 0, 0, 0, 0x02};
	static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	uint8_t ns[NEIGH_NS_FRAME_LEN], na[NEIGH_NA_FRAME_LEN], hismac[6], got[6];
	struct addr ll, him = v6("fe80::1"), who, tgt;
	struct pkt_info pi, pa;
	unsigned fl;

	mac_of(10, hismac);
	neigh_link_local(&ll, mymac);
	assert_int_equal(neigh_ns_request(ns, sizeof(ns), hismac, &him, &ll), NEIGH_NS_FRAME_LEN);
	assert_int_equal(pkt_parse(ns, sizeof(ns), &pi), 0);
	assert_int_equal(neigh_nd_parse(ns, &pi, &who, got, &fl), 1);
	neigh_nd_target(ns, &pi, &tgt);
	assert_true(addr_eq(&tgt, &ll));

	assert_int_equal(neigh_na_reply(na, sizeof(na) - 1, mymac, ns, &pi), -EINVAL);
	assert_int_equal(neigh_na_reply(na, sizeof(na), mymac, ns, &pi), NEIGH_NA_FRAME_LEN);
	assert_int_equal(pkt_parse(na, sizeof(na), &pa), 0);
	assert_memory_equal(na, hismac, 6);
	assert_memory_equal(na + 6, mymac, 6);
	assert_true(addr_eq(&pa.src, &ll));
	assert_true(addr_eq(&pa.dst, &him));
	assert_int_equal(pa.icmp_type, 136);
	assert_int_equal(neigh_nd_parse(na, &pa, &who, got, &fl), 1);
	assert_true(addr_eq(&who, &ll));
	assert_memory_equal(got, mymac, 6);
	assert_int_equal(fl, NEIGH_ND_SOLICITED | NEIGH_ND_OVERRIDE);

	/* A duplicate-address probe for it: from ::, no option. */
	memset(ns + 14 + 8, 0, 16);
	ns[14 + 5] = 24;
	refill(ns, &pi);
	assert_int_equal(neigh_nd_parse(ns, &pi, &who, got, &fl), 0);
	assert_int_equal(neigh_na_reply(na, sizeof(na), mymac, ns, &pi), NEIGH_NA_FRAME_LEN);
	assert_int_equal(pkt_parse(na, sizeof(na), &pa), 0);
	assert_memory_equal(na, all_nodes_mac, 6);
	struct addr all = v6("ff02::1");
	assert_true(addr_eq(&pa.dst, &all));
	assert_int_equal(neigh_nd_parse(na, &pa, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_OVERRIDE);
	/* Not a solicitation: refused. */
	assert_int_equal(neigh_na_reply(ns, sizeof(ns), mymac, na, &pa), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_args), cmocka_unit_test(test_resolve_and_retry),
	    cmocka_unit_test(test_learn_rules), cmocka_unit_test(test_aging_wanted),
	    cmocka_unit_test(test_aging_unwanted), cmocka_unit_test(test_static),
	    cmocka_unit_test(test_capacity), cmocka_unit_test(test_random_aging),
	    cmocka_unit_test(test_foreach), cmocka_unit_test(test_arp_request_frame),
	    cmocka_unit_test(test_nd_frames), cmocka_unit_test(test_keep_without_override),
	    cmocka_unit_test(test_nd_validity), cmocka_unit_test(test_unsolicited_no_confirmation),
	    cmocka_unit_test(test_lost_by_family), cmocka_unit_test(test_link_local_and_groups),
	    cmocka_unit_test(test_mld_report_frame), cmocka_unit_test(test_mld_schedule),
	    cmocka_unit_test(test_na_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
