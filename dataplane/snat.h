/* snat: per-worker pool of source ports for one node SNAT address (nat mode). */
#ifndef FULCRUM_DATAPLANE_SNAT_H
#define FULCRUM_DATAPLANE_SNAT_H

#include <stdint.h>

#include "dataplane/addr.h"

/*
 * One pool per (node SNAT address, worker), owned by that worker: every call
 * on a pool must come from the owner thread (no locks); create/destroy from
 * any thread while nobody else uses the pool. Ports are host byte order.
 *
 * Reuse order is FIFO: a freed port goes to the back of the queue and is
 * handed out again only after every other free port. The backend keeps the
 * old connection (SNAT address, port, backend address, port) in TIME_WAIT
 * (60 s on Linux) when it closed first; a new SYN on that 4-tuple may be
 * dropped or answered with a stale ACK. Reusing the least recently freed port
 * maximises the gap: with P free ports and R new connections per second the
 * gap is about P / R seconds.
 *
 * The first order of the ports is a permutation drawn from `seed` (RFC 6056
 * section 3.1: unpredictable ports make blind in-window attacks on the
 * backend connection harder); seed 0 keeps ascending order (tests, pcaps).
 *
 * Capacity note: the reverse key includes the backend, so uniqueness per SNAT
 * address is stricter than needed; a slice of P ports bounds a worker to P
 * concurrent nat flows per SNAT address. Add SNAT addresses to scale.
 */

struct snat_pool;

/*
 * Pool for ports lo..hi (1 <= lo <= hi) of `addr` (copied; may be NULL).
 * Everything is allocated here; alloc/free never allocate. NULL on bad
 * arguments or out of memory.
 */
struct snat_pool *snat_create(const struct addr *addr, uint16_t lo, uint16_t hi, uint64_t seed);

/* Free the pool (ports still allocated are forgotten). NULL is a no-op. */
void snat_destroy(struct snat_pool *p);

/* Take a free port into *port: 0, or -ENOSPC when every port is in use (count a drop). O(1). */
int snat_alloc(struct snat_pool *p, uint16_t *port);

/*
 * The port the (k+1)-th snat_alloc from now would hand out if nothing is
 * freed in between (k = 0: the next one), without taking it: lets a caller
 * start loading what that port will need. 0, or -ENOSPC (fewer than k + 1
 * free ports).
 */
int snat_peek(const struct snat_pool *p, uint32_t k, uint16_t *port);

/*
 * Give a port back. 0, or -EINVAL (pool unchanged) if it is outside the range
 * or not allocated (double free). O(1).
 */
int snat_free(struct snat_pool *p, uint16_t port);

/*
 * A reference per allocated port, for its holder: nat keeps there the flow
 * entry that holds the port, so that a reply, which carries the port as its
 * destination, finds its flow without a hash-table bucket (a cache miss at
 * a million flows). snat_set_ref sets it for an allocated port (0, or
 * -EINVAL if the port is outside the range or free); snat_free resets it to
 * SNAT_REF_NONE. A reference is a hint: the holder checks what it points at.
 */
#define SNAT_REF_NONE 0xffffffffu
int snat_set_ref(struct snat_pool *p, uint16_t port, uint32_t ref);

/*
 * A read-only view of the references, for the owner's per-packet path:
 * snat_refs_of(pool, &v) once (pool may be NULL: every lookup then gives
 * SNAT_REF_NONE), snat_ref(&v, port) per packet. The view stays valid for
 * the pool's life.
 */
struct snat_refs {
	const uint32_t *ref;
	uint32_t lo;
	uint32_t n;
};
void snat_refs_of(const struct snat_pool *p, struct snat_refs *out);

static inline uint32_t snat_ref(const struct snat_refs *v, uint16_t port)
{
	uint32_t i = (uint32_t)port - v->lo;

	return i < v->n ? v->ref[i] : SNAT_REF_NONE;
}

/* Ports currently allocated / size of the range. */
uint32_t snat_in_use(const struct snat_pool *p);
uint32_t snat_size(const struct snat_pool *p);

/* The address given to snat_create (ADDR_NONE if it was NULL). */
const struct addr *snat_addr(const struct snat_pool *p);

/*
 * Split lo..hi into n_workers contiguous slices whose sizes differ by at most
 * one (the first ones get the extra port) and return slice `worker` in
 * *wlo..*whi. Slices are disjoint and cover the range exactly. 0, or -EINVAL
 * if lo > hi, lo == 0, n_workers == 0, worker >= n_workers, or there are
 * fewer ports than workers. Pure; any thread.
 */
int snat_worker_range(uint16_t lo, uint16_t hi, unsigned worker, unsigned n_workers, uint16_t *wlo,
		      uint16_t *whi);

#endif
