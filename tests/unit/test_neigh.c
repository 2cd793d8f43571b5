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
	assert_int_equal(neigh_tick(t, 1000, record, &r), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(requests_for(&r, &be), 1);
	assert_int_equal(requests_for(&r, &gw), 1);
	neigh_tick(t, 1000 + 499 * MS, record, &r);
	assert_int_equal(r.n, 2);
	neigh_tick(t, 1000 + 500 * MS, record, &r);
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
	neigh_tick(t, 4 * SEC, record, &r);
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
	neigh_tick(t, 2 * SEC, record, &r);
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
		assert_int_equal(neigh_tick(t, now, record, &r), 0);
	assert_int_equal(r.n, 0);
	/* Second half: re-confirmation requests while the MAC stays usable. */
	assert_int_equal(neigh_tick(t, timeout / 2, record, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	/* The neighbour answers: the entry lives on without a change. */
	assert_int_equal(neigh_learn(t, &a, mac, timeout / 2 + 1, 0), 0);
	assert_int_equal(neigh_tick(t, timeout + 1, record, &r), 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);

	/* Now it stops answering: lost exactly once, at timeout after the last answer. */
	uint64_t last = timeout / 2 + 1;
	int lost = 0;
	for (uint64_t now = last; now < last + timeout; now += retry)
		lost += neigh_tick(t, now, record, &r);
	assert_int_equal(lost, 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_int_equal(neigh_tick(t, last + timeout, record, &r), 1);
	assert_int_equal(neigh_lookup(t, &a, got), 0);
	assert_int_equal(neigh_tick(t, last + timeout + 1, record, &r), 0);
	/* Still wanted: still asked for. */
	unsigned before = r.n;
	neigh_tick(t, last + timeout + retry, record, &r);
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
	assert_int_equal(neigh_tick(t, 10 * SEC, record, &r), 0);
	assert_int_equal(neigh_count(t), 1);
	assert_int_equal(neigh_tick(t, 11 * SEC, record, &r), 0);
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
		assert_int_equal(neigh_tick(t, now, record, &r), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(neigh_lookup(t, &a, got), 1);
	assert_memory_equal(got, smac, 6);

	/* Reload without the static entry: the wanted address goes back to ARP. */
	neigh_clear_static(t);
	assert_int_equal(neigh_lookup(t, &a, got), 0);
	neigh_tick(t, 101 * SEC, record, &r);
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
		assert_int_equal(neigh_tick(t, now, NULL, NULL), 0);
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
	assert_int_equal(pkt_parse(frame, NEIGH_NS_FRAME_LEN, &pi), 0);
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_true(addr_eq(&who, &target));
	assert_memory_equal(got, tmac, 6);
	assert_int_equal(fl, NEIGH_ND_SOLICITED | NEIGH_ND_OVERRIDE);
	/* a proxy's answer: Override clear (and R, which says nothing about the MAC) */
	icmp[4] = 0xc0;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_SOLICITED);
	/* an unsolicited announcement of a new MAC: Override set, Solicited clear */
	icmp[4] = 0x20;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 1);
	assert_int_equal(fl, NEIGH_ND_OVERRIDE);
	icmp[4] = 0x60;
	/* without the option: nothing learned */
	icmp[24] = 14;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), 0);
	/* invalid: a zero-length option, a hop limit that is not 255, a multicast target */
	icmp[24] = 2;
	icmp[25] = 0;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	icmp[25] = 1;
	frame[14 + 7] = 64;
	assert_int_equal(neigh_nd_parse(frame, &pi, &who, got, &fl), -EINVAL);
	frame[14 + 7] = 255;
	icmp[8] = 0xff;
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
	neigh_tick(t, 20 * MS + SEC, record, &r);
	assert_int_equal(requests_for(&r, &be), 1);
	/* The owner's own answer without Override (Linux, to a unicast solicitation) refreshes. */
	assert_int_equal(neigh_learn(t, &be, owner, 20 * MS + SEC, NEIGH_LEARN_KEEP), 0);
	r.n = 0;
	neigh_tick(t, 20 * MS + SEC + 500 * MS, record, &r);
	assert_int_equal(r.n, 0);
	/* With no answer at all, the entry expires as usual. */
	assert_int_equal(neigh_tick(t, 20 * MS + 3 * SEC + 1, NULL, NULL), 1);
	assert_int_equal(neigh_lookup(t, &be, got), 0);
	/* A real move (Override set, unsolicited) replaces the MAC. */
	assert_int_equal(neigh_learn(t, &be, owner, 4 * SEC, 0), 1);
	assert_int_equal(neigh_learn(t, &be, moved, 5 * SEC, 0), 1);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_args), cmocka_unit_test(test_resolve_and_retry),
	    cmocka_unit_test(test_learn_rules), cmocka_unit_test(test_aging_wanted),
	    cmocka_unit_test(test_aging_unwanted), cmocka_unit_test(test_static),
	    cmocka_unit_test(test_capacity), cmocka_unit_test(test_random_aging),
	    cmocka_unit_test(test_foreach), cmocka_unit_test(test_arp_request_frame),
	    cmocka_unit_test(test_nd_frames), cmocka_unit_test(test_keep_without_override),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
