/* maglev: weighted Maglev consistent-hash lookup tables (Eisenbud et al., NSDI 2016, §3.4). */
#ifndef FULCRUM_DATAPLANE_MAGLEV_H
#define FULCRUM_DATAPLANE_MAGLEV_H

#include <stdint.h>

#include "dataplane/addr.h"

/* Slot value meaning "no backend": the table is empty or every weight is 0. */
#define MAGLEV_NONE UINT32_MAX

/* Table sizes must be prime and within [MAGLEV_MIN_SIZE, MAGLEV_MAX_SIZE]. */
#define MAGLEV_DEFAULT_SIZE 65537u
/* 2 is the smallest size for which skip = h2 mod (M - 1) + 1 is defined. */
#define MAGLEV_MIN_SIZE 2u
/*
 * Largest prime below 2^22 (16 MiB of entries). The paper asks for M well
 * above 100 * N to keep imbalance near 1 %, so this serves up to ~40 000
 * backends per service; 655373 (the paper's large size) is well inside.
 */
#define MAGLEV_MAX_SIZE 4194301u

/*
 * A backend as the caller lists it. Its identity is (addr, port); the build
 * hashes the identity serialized as 19 bytes: family (4 or 6), the 16 address
 * bytes (network order, zero-filled after a v4 address), port big-endian.
 * So every node, whatever its byte order, derives the same permutation for
 * the same backend, and the array position never matters.
 *
 * weight: any uint32_t, no cap. 0 means drain: the backend owns no slot.
 */
struct maglev_backend {
	struct addr addr;
	uint16_t port;
	uint32_t weight;
};

/*
 * A built table. entry[slot] is the index into the caller's backend array
 * (as passed to maglev_build) of the slot's owner, or MAGLEV_NONE.
 * Read-only after maglev_build returns; owned by whoever built it.
 */
struct maglev_table {
	uint32_t size;	     /* M, prime */
	uint32_t n_backends; /* n as passed to maglev_build: bound for entry[] values */
	uint32_t *entry;     /* size elements */
};

/*
 * Returns 1 if x is prime, else 0. Any thread.
 */
int maglev_is_prime(uint32_t x);

/*
 * Build a table of `size` slots for the n backends b[0..n-1] under the
 * cluster-wide hash seed.
 *
 * Algorithm: each backend with weight > 0 gets the permutation of the paper,
 * offset = h1(id) mod M, skip = h2(id) mod (M - 1) + 1, with h1 and h2 two
 * hash_bytes() of the identity whose seeds are both derived from `seed`.
 * Backends are then taken in identity order (addr_cmp, then port), never in
 * input order, and fill the table in rounds. Weighting: in every round each
 * backend adds its weight to a credit; when the credit reaches w_max (the
 * largest weight) the backend claims its next free preferred slot and pays
 * w_max. So a backend of weight w_max claims one slot per round and one of
 * weight w claims one in about w_max / w rounds, which gives it about
 * M * w / sum(w) slots: at most 2 fewer, at most 1 + w / w_mean more (the
 * last round's rounding goes to whoever claims in it). Shares below 1/M may
 * round to 0 slots.
 * With equal weights this is exactly the paper's round-robin fill.
 * Ownership is therefore a function of the set {(identity, weight)} and the
 * seed only: same set and seed, same slot->identity map on every node,
 * whatever the input order. Draining (weight 0) gives exactly the table
 * built without that backend.
 *
 * Disruption: when one of N backends leaves, its M / N slots move and, by
 * the fill's cascade, about 0.2-0.6 % of the other slots too (measured:
 * 1.02x the ideal 1/N at N = 10, 1.55x at N = 100, 4-7x at N = 1000). Flows
 * already in a flow table are not affected.
 *
 * n may be 0 (b may then be NULL), and all weights may be 0: the build then
 * succeeds and every slot is MAGLEV_NONE.
 *
 * Errors (t is then left untouched):
 *   -EINVAL  t is NULL; b is NULL with n > 0; n == UINT32_MAX; size is not
 *            prime or is outside [MAGLEV_MIN_SIZE, MAGLEV_MAX_SIZE]; fewer
 *            slots than backends with weight > 0; two backends with the same
 *            (addr, port) (whatever their weights); an address family other
 *            than ADDR_V4 / ADDR_V6, or a v4 address with non-zero b[4..15].
 *   -ENOMEM  allocation failed.
 *
 * Memory: allocates t->entry (malloc) and frees its own scratch before
 * returning. Whatever t held before is overwritten, not freed: with RCU the
 * old table is still being read, so build into a fresh struct and release
 * the old one with maglev_free after the grace period.
 * Thread: the control thread (any single thread; no global state, so
 * different tables may be built concurrently). Cost: O(M log M) probes,
 * about 1.4 ms for N = 1000, M = 65537 (tools/bench/bench_maglev.c).
 */
int maglev_build(struct maglev_table *t, uint32_t size, const struct maglev_backend *b, uint32_t n,
		 uint64_t seed);

/*
 * Make dst a copy of the built table src (the same slots): what maglev_build
 * would give for src's inputs, at the cost of one copy instead of the fill.
 * For a forwarding state whose service did not change since the previous
 * state. dst is overwritten (not freed). 0 or -ENOMEM (dst zeroed). Any thread.
 */
int maglev_copy(struct maglev_table *dst, const struct maglev_table *src);

/*
 * Free t->entry and zero *t. Safe on a zeroed or already freed table and on
 * NULL. Only once no worker can still be reading the table.
 */
void maglev_free(struct maglev_table *t);

/*
 * Owner of the slot a flow hash falls in: an index into the backend array
 * given to maglev_build, or MAGLEV_NONE. t must have been built
 * successfully and not freed.
 *
 * The slot is ((flow_hash >> 32) * size) >> 32 (Lemire's multiply-shift
 * range reduction) instead of flow_hash % size: one multiply, no division.
 * It uses only the top 32 bits of flow_hash, which a well-mixed 64-bit hash
 * (hash_bytes) makes uniform; slots differ in probability by at most
 * size / 2^32 (< 0.1 %). Pure read, no allocation: any number of workers may
 * call it concurrently. Deterministic: same table and hash, same answer.
 */
static inline uint32_t maglev_lookup(const struct maglev_table *t, uint64_t flow_hash)
{
	uint64_t slot = ((flow_hash >> 32) * (uint64_t)t->size) >> 32;

	return t->entry[slot];
}

/*
 * Count slots per owner: counts[i] = number of slots owned by backend i, for
 * i < t->n_backends (counts must have that many elements; zeroed here).
 * Returns the number of MAGLEV_NONE slots. Any thread; pure read of t.
 */
uint32_t maglev_count(const struct maglev_table *t, uint32_t *counts);

/*
 * Compare two tables by owner identity, for measuring disruption after a
 * change: *moved = number of slots whose owner (addr, port) differs between
 * a (built from backend array ba) and b (built from bb), an empty slot
 * differing from any backend. Index positions do not matter, so the arrays
 * may be ordered differently. Returns 0, or -EINVAL if an argument is NULL
 * or the sizes differ (*moved is then unchanged). Any thread; pure read.
 */
int maglev_diff(const struct maglev_table *a, const struct maglev_backend *ba,
		const struct maglev_table *b, const struct maglev_backend *bb, uint32_t *moved);

#endif
