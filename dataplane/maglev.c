#include "dataplane/maglev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/hash.h"

/* family byte + 16 address bytes + 2 port bytes */
#define KEY_LEN 19

/*
 * h1 and h2 must be independent hashes of the same identity (§3.4); both
 * depend on the cluster seed so that a new seed reshuffles every table, and
 * the tweaks keep them apart. Changing any of these changes every table in
 * the cluster: the golden test in tests/unit/test_maglev.c guards them.
 */
#define SEED_TWEAK_OFFSET 0x6d61676c65762d31ULL /* "maglev-1" */
#define SEED_TWEAK_SKIP	  0x6d61676c65762d32ULL /* "maglev-2" */

/*
 * The round scan visits every backend once per round, about
 * M * w_max / sum(w) rounds, so it costs M * (w_max / w_mean) cheap,
 * predictable steps; the heap costs M * log2(N) mispredicted ones. Measured
 * with N = 1000, M = 65537 (AMD EPYC): equal at w_max / w_mean ~ 70, the
 * heap 3x slower at 1, the scan 50x slower at 900. Both give the same table.
 */
#define SCAN_MAX_SKEW 64

/* The tail search starts with sqrt(M) * NUM / DEN free slots (measured). */
#define TAIL_SQRT_NUM 1
#define TAIL_SQRT_DEN 2

/* Fill state of one backend with weight > 0; the array is in identity order. */
struct fill {
	uint32_t offset;	      /* first slot of its permutation */
	uint32_t inv;		      /* skip^-1 mod M, 0 until the tail search needs it */
	uint32_t pos;		      /* next slot of its permutation to try */
	uint32_t skip;		      /* permutation step, in [1, M - 1] */
	uint32_t skip2, skip3, skip4; /* 2, 3, 4 steps, mod M */
	uint32_t idx;		      /* index into the caller's array: what slots store */
	uint32_t weight;	      /* > 0 */
	uint64_t credit;	      /* round scan: accumulated weight not yet spent */
	uint64_t quot;		      /* heap: k * w_max = quot * weight + rem for claim k */
	uint32_t rem;
	uint32_t q0; /* w_max / weight */
	uint32_t r0; /* w_max % weight */
};

/* The table being filled. */
struct filling {
	uint64_t *used;	   /* occupancy bitmap */
	uint32_t *entry;   /* the result */
	uint32_t m;	   /* size */
	uint32_t left;	   /* free slots */
	uint32_t tail;	   /* from this many free slots on, search instead of probing */
	uint32_t *free_at; /* the free slots, once left <= tail */
};

int maglev_is_prime(uint32_t x)
{
	if (x < 4)
		return x >= 2;
	if (x % 2 == 0 || x % 3 == 0)
		return 0;
	/* Every prime above 3 is 6k +/- 1; d <= 65535 so d * d cannot overflow. */
	for (uint32_t d = 5; (uint64_t)d * d <= x; d += 6) {
		if (x % d == 0 || x % (d + 2) == 0)
			return 0;
	}
	return 1;
}

/* Byte order fixed here, not by the host: every node must hash the same bytes. */
static void identity_key(const struct maglev_backend *be, uint8_t key[KEY_LEN])
{
	key[0] = be->addr.family;
	memcpy(key + 1, be->addr.b, 16);
	key[17] = (uint8_t)(be->port >> 8);
	key[18] = (uint8_t)(be->port & 0xff);
}

static int identity_cmp(const struct maglev_backend *x, const struct maglev_backend *y)
{
	int c = addr_cmp(&x->addr, &y->addr);

	if (c != 0)
		return c;
	return x->port < y->port ? -1 : x->port > y->port;
}

static int sorted_cmp(const void *x, const void *y)
{
	const struct maglev_backend *const *bx = x;
	const struct maglev_backend *const *by = y;

	return identity_cmp(*bx, *by);
}

static int backend_valid(const struct maglev_backend *be)
{
	if (be->addr.family == ADDR_V6)
		return 1;
	if (be->addr.family != ADDR_V4)
		return 0;
	/* A v4 address with junk after b[3] would hash unlike its twin elsewhere. */
	for (size_t i = 4; i < sizeof(be->addr.b); i++) {
		if (be->addr.b[i] != 0)
			return 0;
	}
	return 1;
}

static inline int slot_used(const uint64_t *used, uint32_t pos)
{
	return (int)(used[pos >> 6] >> (pos & 63)) & 1;
}

/* (pos + d) mod m for pos, d < m: a compare instead of a division. */
static inline uint32_t add_mod(uint32_t pos, uint32_t d, uint32_t m)
{
	pos += d;
	return pos >= m ? pos - m : pos;
}

/* x^-1 mod m for 0 < x < m, m prime (extended Euclid). */
static uint32_t inverse_mod(uint32_t x, uint32_t m)
{
	int64_t t = 0, t1 = 1, r = m, r1 = x;

	while (r1 != 0) {
		int64_t q = r / r1, tmp;

		tmp = t - q * t1;
		t = t1;
		t1 = tmp;
		tmp = r - q * r1;
		r = r1;
		r1 = tmp;
	}
	return (uint32_t)(t < 0 ? t + m : t);
}

/*
 * Probing: four consecutive permutation positions per iteration. They
 * depend on pos only, not on each other, and one branch covers all four.
 */
static uint32_t probe(const struct fill *f, const uint64_t *used, uint32_t m)
{
	uint32_t pos = f->pos;

	while (slot_used(used, pos)) {
		uint32_t p1 = add_mod(pos, f->skip, m);
		uint32_t p2 = add_mod(pos, f->skip2, m);
		uint32_t p3 = add_mod(pos, f->skip3, m);
		unsigned taken = (unsigned)slot_used(used, p1) |
				 (unsigned)slot_used(used, p2) << 1 |
				 (unsigned)slot_used(used, p3) << 2;

		if (taken != 7)
			return !(taken & 1) ? p1 : !(taken & 2) ? p2 : p3;
		pos = add_mod(pos, f->skip4, m);
	}
	return pos;
}

/*
 * With F slots free, probing costs about M / F tries per claim, and the last
 * sqrt(M) slots cost half of all M ln M probes. There it is cheaper to ask
 * which free slot comes first in f's permutation: slot s sits at position
 * (s - offset) * skip^-1 mod M, and every position before f->pos is taken,
 * so the free slot of least position is exactly what probing would find.
 * Returns the index in free_at.
 */
static uint32_t search_tail(struct fill *f, const struct filling *c)
{
	uint32_t best = 0, best_at = UINT32_MAX;

	if (f->inv == 0)
		f->inv = inverse_mod(f->skip, c->m);
	for (uint32_t k = 0; k < c->left; k++) {
		uint32_t d = add_mod(c->free_at[k], c->m - f->offset, c->m);
		uint32_t at = (uint32_t)((uint64_t)d * f->inv % c->m);

		if (at < best_at) {
			best_at = at;
			best = k;
		}
	}
	return best;
}

/* Give f its next preferred free slot (the inner loop of the paper's Pseudocode 1). */
static void claim(struct fill *f, struct filling *c)
{
	uint32_t pos;

	if (c->left <= c->tail) {
		uint32_t k = search_tail(f, c);

		pos = c->free_at[k];
		c->free_at[k] = c->free_at[c->left - 1];
	} else {
		pos = probe(f, c->used, c->m);
	}
	c->used[pos >> 6] |= 1ULL << (pos & 63);
	c->entry[pos] = f->idx;
	f->pos = add_mod(pos, f->skip, c->m);
	c->left--;
	if (c->left == c->tail && c->tail > 0) {
		uint32_t k = 0;

		for (uint32_t s = 0; s < c->m; s++) {
			if (!slot_used(c->used, s))
				c->free_at[k++] = s;
		}
	}
}

/* Weighted round robin, one round at a time: cheap when weights are close. */
static void fill_scan(struct fill *fs, uint32_t n, uint32_t w_max, struct filling *c)
{
	for (;;) {
		for (uint32_t i = 0; i < n; i++) {
			struct fill *f = &fs[i];

			f->credit += f->weight;
			if (f->credit < w_max)
				continue;
			f->credit -= w_max;
			claim(f, c);
			if (c->left == 0)
				return;
		}
	}
}

/*
 * Heap order: (round, position in identity order) packed into one key.
 * Rounds that matter are <= M (a backend of weight w_max claims once per
 * round, so M rounds fill the table) and positions are < 2^32.
 */
static uint64_t heap_key(uint64_t round, uint32_t i)
{
	return round << 32 | i;
}

static void sift_down(uint64_t *h, uint32_t len, uint32_t at)
{
	uint64_t k = h[at];

	for (;;) {
		uint32_t c = 2 * at + 1;

		if (c >= len)
			break;
		if (c + 1 < len && h[c + 1] < h[c])
			c++;
		if (k <= h[c])
			break;
		h[at] = h[c];
		at = c;
	}
	h[at] = k;
}

/* Round of f's next claim, ceil(k * w_max / weight), after advancing k. */
static uint64_t next_round(struct fill *f)
{
	f->quot += f->q0;
	f->rem += f->r0;
	if (f->rem >= f->weight) {
		f->rem -= f->weight;
		f->quot++;
	}
	return f->quot + (f->rem != 0);
}

/*
 * The same schedule as fill_scan, claim by claim: backend i's k-th claim
 * falls in round ceil(k * w_max / w_i), and within a round backends go in
 * identity order. Visiting only due backends keeps skewed weights (one
 * backend at 10^6, the rest at 1) at O(M log N) instead of O(M * N).
 */
static void fill_heap(struct fill *fs, uint32_t n, uint32_t w_max, uint64_t *heap,
		      struct filling *c)
{
	uint32_t len = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct fill *f = &fs[i];

		f->q0 = w_max / f->weight;
		f->r0 = w_max % f->weight;
		f->quot = 0;
		f->rem = 0;
		uint64_t round = next_round(f);
		if (round <= c->m)
			heap[len++] = heap_key(round, i);
	}
	for (uint32_t i = len / 2; i-- > 0;)
		sift_down(heap, len, i);

	while (len > 0) {
		uint32_t i = (uint32_t)(heap[0] & 0xffffffffu);
		struct fill *f = &fs[i];

		claim(f, c);
		if (c->left == 0)
			return;
		uint64_t round = next_round(f);
		if (round <= c->m)
			heap[0] = heap_key(round, i);
		else
			heap[0] = heap[--len];
		sift_down(heap, len, 0);
	}
}

static int check_args(const struct maglev_table *t, uint32_t size, const struct maglev_backend *b,
		      uint32_t n)
{
	if (t == NULL || (b == NULL && n > 0) || n == UINT32_MAX)
		return -EINVAL;
	if (size < MAGLEV_MIN_SIZE || size > MAGLEV_MAX_SIZE || !maglev_is_prime(size))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (!backend_valid(&b[i]))
			return -EINVAL;
	}
	return 0;
}

/* Everything maglev_build learns from the sorted backend list. */
struct plan {
	const struct maglev_backend *base; /* caller's array: idx = pointer - base */
	const struct maglev_backend **sorted;
	uint32_t n;
	uint32_t n_active; /* weight > 0 */
	uint32_t w_max;
	uint64_t w_sum;
};

/* Free slots below which claims search instead of probe: see search_tail. */
static uint32_t tail_size(uint32_t m)
{
	uint32_t r = 0;

	while ((uint64_t)(r + 1) * (r + 1) <= m)
		r++;
	return r * TAIL_SQRT_NUM / TAIL_SQRT_DEN;
}

/* Fill entry[] (preset to MAGLEV_NONE) for a plan with n_active > 0. */
static int fill_table(const struct plan *p, uint32_t *entry, uint32_t m, uint64_t seed)
{
	uint64_t seed_offset = hash_fmix64(seed ^ SEED_TWEAK_OFFSET);
	uint64_t seed_skip = hash_fmix64(seed ^ SEED_TWEAK_SKIP);
	struct filling c = {.entry = entry, .m = m, .left = m, .tail = tail_size(m)};
	struct fill *fs = calloc(p->n_active, sizeof(*fs));
	uint64_t *heap = NULL;
	uint32_t j = 0;
	int rc = -ENOMEM;

	c.used = calloc(((size_t)m + 63) / 64, sizeof(*c.used));
	c.free_at = malloc(((size_t)c.tail + 1) * sizeof(*c.free_at));
	if (fs == NULL || c.used == NULL || c.free_at == NULL)
		goto out;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct maglev_backend *be = p->sorted[i];
		struct fill *f = &fs[j];
		uint8_t key[KEY_LEN];

		if (be->weight == 0)
			continue;
		identity_key(be, key);
		/* §3.4: offset = h1 mod M, skip = h2 mod (M - 1) + 1. M is prime, so
		 * every skip is coprime with it and the permutation visits every slot. */
		f->offset = (uint32_t)(hash_bytes(key, KEY_LEN, seed_offset) % m);
		f->skip = (uint32_t)(hash_bytes(key, KEY_LEN, seed_skip) % (m - 1)) + 1;
		f->pos = f->offset;
		f->skip2 = add_mod(f->skip, f->skip, m);
		f->skip3 = add_mod(f->skip2, f->skip, m);
		f->skip4 = add_mod(f->skip3, f->skip, m);
		f->idx = (uint32_t)(be - p->base);
		f->weight = be->weight;
		j++;
	}

	if ((uint64_t)p->w_max * p->n_active <= SCAN_MAX_SKEW * p->w_sum) {
		fill_scan(fs, p->n_active, p->w_max, &c);
	} else {
		heap = malloc((size_t)p->n_active * sizeof(*heap));
		if (heap == NULL)
			goto out;
		fill_heap(fs, p->n_active, p->w_max, heap, &c);
	}
	rc = 0;
out:
	free(heap);
	free(c.free_at);
	free(c.used);
	free(fs);
	return rc;
}

int maglev_build(struct maglev_table *t, uint32_t size, const struct maglev_backend *b, uint32_t n,
		 uint64_t seed)
{
	struct plan p = {.base = b, .n = n};
	uint32_t *entry = NULL;
	int rc;

	rc = check_args(t, size, b, n);
	if (rc != 0)
		return rc;

	/* Identity order makes the fill independent of the caller's order. */
	if (n > 0) {
		p.sorted = malloc((size_t)n * sizeof(*p.sorted));
		if (p.sorted == NULL)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		p.sorted[i] = &b[i];
	if (n > 1)
		qsort(p.sorted, n, sizeof(*p.sorted), sorted_cmp);
	rc = -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		const struct maglev_backend *be = p.sorted[i];

		if (i > 0 && identity_cmp(p.sorted[i - 1], be) == 0)
			goto out;
		if (be->weight > 0) {
			p.n_active++;
			p.w_sum += be->weight;
			if (be->weight > p.w_max)
				p.w_max = be->weight;
		}
	}
	if (p.n_active > size)
		goto out;

	rc = -ENOMEM;
	entry = malloc((size_t)size * sizeof(*entry));
	if (entry == NULL)
		goto out;
	memset(entry, 0xff, (size_t)size * sizeof(*entry)); /* every slot MAGLEV_NONE */
	rc = p.n_active > 0 ? fill_table(&p, entry, size, seed) : 0;
	if (rc != 0)
		goto out;

	t->size = size;
	t->n_backends = n;
	t->entry = entry;
	entry = NULL;
out:
	free(entry);
	free(p.sorted);
	return rc;
}

int maglev_copy(struct maglev_table *dst, const struct maglev_table *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->entry = malloc((size_t)src->size * sizeof(*dst->entry));
	if (dst->entry == NULL)
		return -ENOMEM;
	memcpy(dst->entry, src->entry, (size_t)src->size * sizeof(*dst->entry));
	dst->size = src->size;
	dst->n_backends = src->n_backends;
	return 0;
}

void maglev_free(struct maglev_table *t)
{
	if (t == NULL)
		return;
	free(t->entry);
	memset(t, 0, sizeof(*t));
}

uint32_t maglev_count(const struct maglev_table *t, uint32_t *counts)
{
	uint32_t empty = 0;

	if (t->n_backends > 0)
		memset(counts, 0, (size_t)t->n_backends * sizeof(*counts));
	for (uint32_t s = 0; s < t->size; s++) {
		uint32_t e = t->entry[s];

		if (e == MAGLEV_NONE)
			empty++;
		else
			counts[e]++;
	}
	return empty;
}

static int same_owner(const struct maglev_backend *ba, uint32_t ea, const struct maglev_backend *bb,
		      uint32_t eb)
{
	if (ea == MAGLEV_NONE || eb == MAGLEV_NONE)
		return ea == eb;
	return identity_cmp(&ba[ea], &bb[eb]) == 0;
}

int maglev_diff(const struct maglev_table *a, const struct maglev_backend *ba,
		const struct maglev_table *b, const struct maglev_backend *bb, uint32_t *moved)
{
	uint32_t count = 0;

	if (a == NULL || b == NULL || moved == NULL || a->size != b->size)
		return -EINVAL;
	if ((ba == NULL && a->n_backends > 0) || (bb == NULL && b->n_backends > 0))
		return -EINVAL;
	for (uint32_t s = 0; s < a->size; s++) {
		if (!same_owner(ba, a->entry[s], bb, b->entry[s]))
			count++;
	}
	*moved = count;
	return 0;
}
