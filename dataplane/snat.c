#include "dataplane/snat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * A ring of the free ports (FIFO) plus one bit per port saying "allocated".
 * The bit is what makes snat_free safe: a port can be in the ring at most
 * once, so the ring (sized for the whole range) never overflows and a double
 * free cannot duplicate a port.
 */
struct snat_pool {
	struct addr addr;
	uint16_t lo;
	uint16_t hi;
	uint32_t n;	 /* hi - lo + 1 */
	uint32_t head;	 /* next port to hand out */
	uint32_t n_free; /* ports in the ring, from head */
	uint64_t *used;	 /* bit (port - lo) set = allocated */
	uint32_t *ref;	 /* [port - lo]: the holder's reference (snat_set_ref) or SNAT_REF_NONE */
	uint16_t ring[]; /* n entries */
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct snat_pool *snat_create(const struct addr *addr, uint16_t lo, uint16_t hi, uint64_t seed)
{
	struct snat_pool *p;
	uint32_t n;
	size_t words, ring_bytes, size;

	if (lo == 0 || lo > hi)
		return NULL;
	n = (uint32_t)hi - lo + 1;
	words = (n + 63) / 64;
	ring_bytes = (sizeof(uint16_t) * n + 7) / 8 * 8;
	size = sizeof(*p) + ring_bytes + words * sizeof(uint64_t) + n * sizeof(uint32_t);
	p = aligned_alloc(64, (size + 63) / 64 * 64);
	if (p == NULL)
		return NULL;
	memset(p, 0, size);
	if (addr)
		p->addr = *addr;
	p->lo = lo;
	p->hi = hi;
	p->n = n;
	p->n_free = n;
	p->used = (uint64_t *)((char *)p->ring + ring_bytes);
	p->ref = (uint32_t *)(p->used + words);
	for (uint32_t i = 0; i < n; i++) {
		p->ring[i] = (uint16_t)(lo + i);
		p->ref[i] = SNAT_REF_NONE;
	}
	if (seed != 0) {
		/* Fisher-Yates; the modulo bias (< n / 2^64) is irrelevant here. */
		for (uint32_t i = n - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(splitmix64(&seed) % (i + 1));
			uint16_t tmp = p->ring[i];

			p->ring[i] = p->ring[j];
			p->ring[j] = tmp;
		}
	}
	return p;
}

void snat_destroy(struct snat_pool *p)
{
	free(p);
}

int snat_alloc(struct snat_pool *p, uint16_t *port)
{
	uint16_t v;
	uint32_t bit;

	if (p->n_free == 0)
		return -ENOSPC;
	v = p->ring[p->head];
	p->head = p->head + 1 == p->n ? 0 : p->head + 1;
	p->n_free--;
	bit = (uint32_t)(v - p->lo);
	p->used[bit / 64] |= 1ULL << (bit % 64);
	*port = v;
	return 0;
}

int snat_peek(const struct snat_pool *p, uint32_t k, uint16_t *port)
{
	uint32_t i;

	if (k >= p->n_free)
		return -ENOSPC;
	i = p->head + k;
	if (i >= p->n)
		i -= p->n;
	*port = p->ring[i];
	return 0;
}

int snat_free(struct snat_pool *p, uint16_t port)
{
	uint32_t bit, tail;

	if (port < p->lo || port > p->hi)
		return -EINVAL;
	bit = (uint32_t)(port - p->lo);
	if (!(p->used[bit / 64] & (1ULL << (bit % 64))))
		return -EINVAL;
	p->used[bit / 64] &= ~(1ULL << (bit % 64));
	p->ref[bit] = SNAT_REF_NONE;
	tail = p->head + p->n_free;
	if (tail >= p->n)
		tail -= p->n;
	p->ring[tail] = port;
	p->n_free++;
	return 0;
}

int snat_set_ref(struct snat_pool *p, uint16_t port, uint32_t ref)
{
	uint32_t bit;

	if (port < p->lo || port > p->hi)
		return -EINVAL;
	bit = (uint32_t)(port - p->lo);
	if (!(p->used[bit / 64] & (1ULL << (bit % 64))))
		return -EINVAL;
	p->ref[bit] = ref;
	return 0;
}

void snat_refs_of(const struct snat_pool *p, struct snat_refs *out)
{
	out->ref = p != NULL ? p->ref : NULL;
	out->lo = p != NULL ? p->lo : 0;
	out->n = p != NULL ? p->n : 0;
}

uint32_t snat_in_use(const struct snat_pool *p)
{
	return p->n - p->n_free;
}

uint32_t snat_size(const struct snat_pool *p)
{
	return p->n;
}

const struct addr *snat_addr(const struct snat_pool *p)
{
	return &p->addr;
}

int snat_worker_range(uint16_t lo, uint16_t hi, unsigned worker, unsigned n_workers, uint16_t *wlo,
		      uint16_t *whi)
{
	uint32_t n, base, rem, start, len;

	if (lo == 0 || lo > hi || n_workers == 0 || worker >= n_workers)
		return -EINVAL;
	n = (uint32_t)hi - lo + 1;
	if (n < n_workers)
		return -EINVAL;
	base = n / n_workers;
	rem = n % n_workers;
	start = lo + worker * base + (worker < rem ? worker : rem);
	len = base + (worker < rem ? 1 : 0);
	*wlo = (uint16_t)start;
	*whi = (uint16_t)(start + len - 1);
	return 0;
}
