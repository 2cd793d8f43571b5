/* Unit tests for dataplane/snat: exhaustion, FIFO reuse, misuse, worker split, a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/addr.h"
#include "dataplane/snat.h"

/* splitmix64: fixed seeds only, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

static void test_create_args(void **state)
{
	struct addr a;
	struct snat_pool *p;

	(void)state;
	assert_int_equal(addr_parse("198.51.100.7", &a), 0);
	assert_null(snat_create(&a, 0, 10, 0));
	assert_null(snat_create(&a, 11, 10, 0));
	p = snat_create(&a, 5, 5, 0);
	assert_non_null(p);
	assert_int_equal(snat_size(p), 1);
	assert_int_equal(snat_in_use(p), 0);
	assert_true(addr_eq(snat_addr(p), &a));
	snat_destroy(p);
	p = snat_create(NULL, 1, 2, 0);
	assert_non_null(p);
	assert_int_equal(snat_addr(p)->family, ADDR_NONE);
	snat_destroy(p);
	snat_destroy(NULL);
}

/* Allocate a whole range: every port once, then -ENOSPC; free one, get it back; misuse. */
static void exhaust(uint16_t lo, uint16_t hi, uint64_t seed)
{
	struct snat_pool *p = snat_create(NULL, lo, hi, seed);
	const uint32_t n = (uint32_t)hi - lo + 1;
	uint8_t *seen = calloc(65536, 1);
	uint16_t port = 0, again;

	assert_non_null(p);
	assert_non_null(seen);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(snat_alloc(p, &port), 0);
		assert_true(port >= lo && port <= hi);
		assert_int_equal(seen[port], 0);
		seen[port] = 1;
		if (seed == 0)
			assert_int_equal(port, lo + i); /* seed 0: ascending */
	}
	assert_int_equal(snat_in_use(p), n);
	assert_int_equal(snat_alloc(p, &again), -ENOSPC);
	assert_int_equal(snat_alloc(p, &again), -ENOSPC);
	assert_int_equal(snat_in_use(p), n);
	/* Free one, and that one comes back. */
	assert_int_equal(snat_free(p, port), 0);
	assert_int_equal(snat_in_use(p), n - 1);
	assert_int_equal(snat_free(p, port), -EINVAL); /* double free */
	assert_int_equal(snat_in_use(p), n - 1);
	assert_int_equal(snat_alloc(p, &again), 0);
	assert_int_equal(again, port);
	assert_int_equal(snat_alloc(p, &again), -ENOSPC);
	/* Outside the range. */
	if (lo > 1)
		assert_int_equal(snat_free(p, (uint16_t)(lo - 1)), -EINVAL);
	if (hi < 65535)
		assert_int_equal(snat_free(p, (uint16_t)(hi + 1)), -EINVAL);
	assert_int_equal(snat_free(p, 0), -EINVAL);
	assert_int_equal(snat_in_use(p), n);
	/* Free everything; then everything can be allocated again. */
	for (uint32_t v = lo; v <= hi; v++)
		assert_int_equal(snat_free(p, (uint16_t)v), 0);
	assert_int_equal(snat_in_use(p), 0);
	assert_int_equal(snat_free(p, lo), -EINVAL);
	memset(seen, 0, 65536);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(snat_alloc(p, &port), 0);
		assert_int_equal(seen[port], 0);
		seen[port] = 1;
	}
	assert_int_equal(snat_alloc(p, &port), -ENOSPC);
	free(seen);
	snat_destroy(p);
}

static void test_exhaustion(void **state)
{
	(void)state;
	exhaust(1024, 1024 + 99, 0);
	exhaust(1024, 1024 + 99, 7);
	exhaust(1, 65535, 0);
	exhaust(1024, 65535, 12345);
	exhaust(65535, 65535, 3);
}

/* A freed port is reused only after every other free port (least recently freed first). */
static void test_fifo_reuse(void **state)
{
	struct snat_pool *p = snat_create(NULL, 100, 109, 0);
	uint16_t port;

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(snat_alloc(p, &port), 0);
		assert_int_equal(port, 100 + i);
	}
	assert_int_equal(snat_free(p, 103), 0);
	assert_int_equal(snat_free(p, 101), 0);
	/* Never-used ports first, then 103, then 101: the order they were freed. */
	for (int i = 5; i < 10; i++) {
		assert_int_equal(snat_alloc(p, &port), 0);
		assert_int_equal(port, 100 + i);
	}
	assert_int_equal(snat_alloc(p, &port), 0);
	assert_int_equal(port, 103);
	assert_int_equal(snat_free(p, 107), 0);
	assert_int_equal(snat_alloc(p, &port), 0);
	assert_int_equal(port, 101);
	assert_int_equal(snat_alloc(p, &port), 0);
	assert_int_equal(port, 107);
	assert_int_equal(snat_alloc(p, &port), -ENOSPC);
	snat_destroy(p);
}

/* snat_peek(k) is what the (k+1)-th snat_alloc from now returns, across the ring's wrap. */
static void test_peek(void **state)
{
	struct snat_pool *p = snat_create(NULL, 1000, 1063, 42);
	uint16_t port, want[64];

	(void)state;
	for (unsigned round = 0; round < 3; round++) {
		uint32_t n_free = snat_size(p) - snat_in_use(p);
		for (uint32_t k = 0; k < n_free; k++)
			assert_int_equal(snat_peek(p, k, &want[k]), 0);
		assert_int_equal(snat_peek(p, n_free, &port), -ENOSPC);
		for (uint32_t k = 0; k < n_free; k++) {
			assert_int_equal(snat_alloc(p, &port), 0);
			assert_int_equal(port, want[k]);
		}
		assert_int_equal(snat_peek(p, 0, &port), -ENOSPC);
		/* free some in a scrambled order: the ring's head is now mid-array */
		for (uint32_t k = 0; k < 40; k++)
			assert_int_equal(snat_free(p, want[(k * 7 + round) % n_free]), 0);
	}
	snat_destroy(p);
}

/* Seeded order: a permutation, reproducible, different for another seed. */
/* Port references: set on allocated ports only, read through the view, reset by free. */
static void test_refs(void **state)
{
	struct addr a;
	struct snat_refs v, none;
	uint16_t port, other;

	(void)state;
	assert_int_equal(addr_parse("192.0.2.1", &a), 0);
	struct snat_pool *p = snat_create(&a, 100, 103, 0);
	assert_non_null(p);
	snat_refs_of(p, &v);
	snat_refs_of(NULL, &none);
	for (uint32_t q = 0; q < 70000; q += 7)
		assert_int_equal(snat_ref(&none, (uint16_t)q), SNAT_REF_NONE);
	for (uint16_t q = 98; q < 106; q++) /* inside and around the range: nothing set yet */
		assert_int_equal(snat_ref(&v, q), SNAT_REF_NONE);
	assert_int_equal(snat_alloc(p, &port), 0);
	assert_int_equal(port, 100);
	assert_int_equal(snat_set_ref(p, port, 7), 0);
	assert_int_equal(snat_ref(&v, port), 7);
	assert_int_equal(snat_set_ref(p, 101, 8), -EINVAL); /* free */
	assert_int_equal(snat_set_ref(p, 99, 8), -EINVAL);	 /* outside */
	assert_int_equal(snat_set_ref(p, 104, 8), -EINVAL);
	assert_int_equal(snat_ref(&v, 101), SNAT_REF_NONE);
	assert_int_equal(snat_alloc(p, &other), 0);
	assert_int_equal(snat_set_ref(p, other, 9), 0);
	assert_int_equal(snat_ref(&v, port), 7);
	assert_int_equal(snat_ref(&v, other), 9);
	/* freed: reset; handed out again (FIFO: after 102 and 103): no reference until set */
	assert_int_equal(snat_free(p, port), 0);
	assert_int_equal(snat_ref(&v, port), SNAT_REF_NONE);
	assert_int_equal(snat_ref(&v, other), 9);
	for (int i = 0; i < 3; i++)
		assert_int_equal(snat_alloc(p, &port), 0);
	assert_int_equal(port, 100);
	assert_int_equal(snat_ref(&v, port), SNAT_REF_NONE);
	snat_destroy(p);
}

static void test_seeded_order(void **state)
{
	uint16_t a[1000], b[1000], c[1000];
	struct snat_pool *p;
	int ascending = 1, same_ab = 1, same_ac = 1;

	(void)state;
	p = snat_create(NULL, 2000, 2999, 99);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(snat_alloc(p, &a[i]), 0);
	snat_destroy(p);
	p = snat_create(NULL, 2000, 2999, 99);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(snat_alloc(p, &b[i]), 0);
	snat_destroy(p);
	p = snat_create(NULL, 2000, 2999, 100);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(snat_alloc(p, &c[i]), 0);
	snat_destroy(p);
	for (int i = 0; i < 1000; i++) {
		ascending &= a[i] == 2000 + i;
		same_ab &= a[i] == b[i];
		same_ac &= a[i] == c[i];
	}
	assert_false(ascending);
	assert_true(same_ab);
	assert_false(same_ac);
}

static void check_split(uint16_t lo, uint16_t hi, unsigned nw)
{
	uint32_t next = lo, n = (uint32_t)hi - lo + 1, min = UINT32_MAX, max = 0;

	for (unsigned w = 0; w < nw; w++) {
		uint16_t wlo = 0, whi = 0;

		assert_int_equal(snat_worker_range(lo, hi, w, nw, &wlo, &whi), 0);
		/* contiguous, in order, no gap, no overlap */
		assert_int_equal(wlo, next);
		assert_true(whi >= wlo);
		next = (uint32_t)whi + 1;
		if ((uint32_t)whi - wlo + 1 < min)
			min = (uint32_t)whi - wlo + 1;
		if ((uint32_t)whi - wlo + 1 > max)
			max = (uint32_t)whi - wlo + 1;
	}
	assert_int_equal(next, (uint32_t)hi + 1);
	assert_true(max - min <= 1);
	assert_int_equal(min, n / nw);
}

static void test_worker_range(void **state)
{
	uint16_t wlo, whi;

	(void)state;
	check_split(1024, 65535, 1);
	check_split(1024, 65535, 2);
	check_split(1024, 65535, 3);
	check_split(1024, 65535, 7);
	check_split(1024, 65535, 64);
	check_split(1, 65535, 5);
	check_split(10, 19, 10);
	check_split(10, 20, 10);
	assert_int_equal(snat_worker_range(1024, 65535, 0, 1, &wlo, &whi), 0);
	assert_int_equal(wlo, 1024);
	assert_int_equal(whi, 65535);
	/* 64512 ports, 3 workers: 21504 each. */
	assert_int_equal(snat_worker_range(1024, 65535, 2, 3, &wlo, &whi), 0);
	assert_int_equal(wlo, 1024 + 2 * 21504);
	assert_int_equal(whi, 65535);
	assert_int_equal(snat_worker_range(1024, 65535, 3, 3, &wlo, &whi), -EINVAL);
	assert_int_equal(snat_worker_range(1024, 65535, 0, 0, &wlo, &whi), -EINVAL);
	assert_int_equal(snat_worker_range(2000, 1999, 0, 1, &wlo, &whi), -EINVAL);
	assert_int_equal(snat_worker_range(0, 10, 0, 1, &wlo, &whi), -EINVAL);
	assert_int_equal(snat_worker_range(10, 12, 0, 4, &wlo, &whi), -EINVAL);
}

/* Random alloc/free (including bad frees) against a reference set. */
static void test_model(void **state)
{
	const uint16_t lo = 30000, hi = 30999;
	struct snat_pool *p = snat_create(NULL, lo, hi, 5);
	uint8_t used[1000] = {0};
	uint32_t in_use = 0;
	uint64_t seed = 77, n_full = 0, n_freed = 0;

	(void)state;
	for (int n = 0; n < 100000; n++) {
		uint32_t r = rng_below(&seed, 100);
		uint16_t port;

		if (r < 50) {
			int rc = snat_alloc(p, &port);

			if (in_use == 1000) {
				assert_int_equal(rc, -ENOSPC);
				n_full++;
			} else {
				assert_int_equal(rc, 0);
				assert_true(port >= lo && port <= hi);
				assert_int_equal(used[port - lo], 0);
				used[port - lo] = 1;
				in_use++;
			}
		} else {
			/* Mostly in the range; some just outside; allocated or not. */
			if (r < 85)
				port = (uint16_t)(lo + rng_below(&seed, 1000));
			else
				port = (uint16_t)(lo - 5 + rng_below(&seed, 1010));
			int ok = port >= lo && port <= hi && used[port - lo];

			assert_int_equal(snat_free(p, port), ok ? 0 : -EINVAL);
			if (ok) {
				used[port - lo] = 0;
				in_use--;
				n_freed++;
			}
		}
		assert_int_equal(snat_in_use(p), in_use);
	}
	/* Both the full pool and the churn happened. */
	assert_true(n_full > 100);
	assert_true(n_freed > 10000);
	snat_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_args),	 cmocka_unit_test(test_exhaustion),
	    cmocka_unit_test(test_fifo_reuse),	 cmocka_unit_test(test_seeded_order),
	    cmocka_unit_test(test_worker_range), cmocka_unit_test(test_model),
	    cmocka_unit_test(test_peek),
	    cmocka_unit_test(test_refs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
