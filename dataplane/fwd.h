/* fwd: the forwarding decision — one packet, one immutable state, one worker's flows, a verdict. */
#ifndef FULCRUM_DATAPLANE_FWD_H
#define FULCRUM_DATAPLANE_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/addr.h"
#include "dataplane/flow.h"
#include "dataplane/maglev.h"
#include "dataplane/rewrite.h"
#include "dataplane/snat.h"

/*
 * Threads. A struct fwd_state is built by one thread at a time
 * (fwd_state_build: it draws the state's generation from a private
 * counter; fulcrumd builds on the control thread, or in cluster mode on its
 * builder thread, never both at once), published to the workers (RCU,
 * dataplane glue), read by any number of workers at once and never modified
 * after publication, then freed by the control thread after a grace period
 * (fwd_state_free). A
 * struct fwd_worker belongs to exactly one worker thread. fwd_packet() and
 * fwd_burst() run on a worker: no allocation, no locks, no logging, no
 * formatting.
 */

enum fwd_mode {
	FWD_MODE_NAT = 1,    /* DNAT to backend + SNAT to node address; replies via node */
	FWD_MODE_DSR = 2,    /* L2 direct server return: destination MAC only */
	FWD_MODE_TUNNEL = 3, /* IP-in-IPv4 to the backend, outer source = node address */
};

/* Backends per service: a flow entry caches the index in 16 bits. */
#define FWD_MAX_BACKENDS 65535u

/* Why a packet was dropped. One counter per reason per worker. */
#define FWD_DROP_REASONS(X)                                                                        \
	X(MALFORMED, "malformed")                 /* the parser refused it */                    \
	X(FRAGMENT, "fragment")                   /* non-first fragment: not reassembled */       \
	X(NOT_LOCAL, "not_local")                 /* not for a VIP or a node address */           \
	X(NO_SERVICE, "no_service")               /* VIP, but no service on that port/proto */    \
	X(NO_BACKEND, "no_backend")               /* service has no backend with weight > 0 */    \
	X(FLOW_TABLE_FULL, "flow_table_full")     /* no room even after eviction */              \
	X(SNAT_EXHAUSTED, "snat_exhausted")       /* no free SNAT port on this worker */          \
	X(NAT_CONFLICT, "nat_conflict")           /* reverse key could not be indexed */         \
	X(NO_NEIGHBOUR, "no_neighbour")           /* next-hop MAC not resolved yet */            \
	X(NO_REVERSE_FLOW, "no_reverse_flow")     /* to a node address, no NAT flow matches */    \
	X(NODE_OTHER, "node_other")               /* to a node address, not handled */            \
	X(ARP_OTHER, "arp_other")                 /* ARP not for us */                           \
	X(ND_OTHER, "nd_other")                   /* invalid or unanswerable IPv6 solicitation */ \
	X(UNSUPPORTED, "unsupported")             /* e.g. ICMP to a nat service */               \
	X(REWRITE, "rewrite")                     /* rewrite refused (headroom, MTU, family) */

enum fwd_drop {
#define FWD_X(name, str) FWD_DROP_##name,
	FWD_DROP_REASONS(FWD_X)
#undef FWD_X
	FWD_DROP__COUNT
};

/* Stable name of a drop reason ("malformed", ...) for metrics; "?" if out of range. */
const char *fwd_drop_str(unsigned reason);

enum fwd_verdict {
	FWD_TX = 1,      /* rewritten; send out of the port */
	FWD_REPLY = 2,   /* answered in place (ARP reply, ICMP echo reply); send out */
	FWD_DROP = 3,    /* free it; res->drop says why (already counted) */
	FWD_CONTROL = 4, /* for the control thread (ARP replies/requests it must learn from) */
};

struct fwd_result {
	uint8_t verdict;  /* enum fwd_verdict */
	uint8_t drop;     /* enum fwd_drop when verdict == FWD_DROP */
	uint32_t svc;     /* service index, or UINT32_MAX */
	uint32_t backend; /* backend index within the service, or UINT32_MAX */
};

/* ---- State description (input of the builder; plain data, caller-owned) ---- */

struct fwd_backend_spec {
	struct addr addr;
	uint16_t port;   /* 0 = same as the service port */
	uint32_t weight; /* 0 = draining: keeps its flows, gets no new ones */
	uint32_t uid;    /* != 0, unique in its service; always names the same (addr, port) */
	uint8_t mac[6];  /* next-hop MAC towards this backend */
	uint8_t mac_ok;  /* 0 = not resolved: packets for it are dropped (NO_NEIGHBOUR) */
};

struct fwd_service_spec {
	struct addr vip;
	uint16_t port;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t mode;  /* enum fwd_mode */
	uint8_t announce; /* answer ARP for the VIP on L2 */
	uint32_t table_size; /* Maglev M; 0 = MAGLEV_DEFAULT_SIZE */
	uint32_t n_backends;
	const struct fwd_backend_spec *backends;
};

struct fwd_spec {
	uint64_t revision;  /* e.g. the Raft index of the last applied entry */
	uint64_t hash_seed; /* cluster-wide: the same on every node */
	uint8_t port_mac[6];
	uint8_t gateway_mac[6]; /* next hop for replies to clients (nat); all zero = unresolved */
	struct addr node_v4;    /* node address: ARP/ICMP, SNAT and tunnel source; may be NONE */
	struct addr node_v6;
	uint32_t n_services;
	const struct fwd_service_spec *services;
	unsigned n_workers; /* counters are allocated per worker */
};

/* ---- Built state (immutable once published) ---- */

struct fwd_counter {
	uint64_t pkts;      /* client -> backend */
	uint64_t bytes;
	uint64_t new_flows;
	uint64_t reply_pkts;  /* backend -> client through this node (nat) */
	uint64_t reply_bytes;
};

struct fwd_backend {
	struct addr addr;
	uint16_t port;
	uint8_t mac[6];
	uint8_t mac_ok;
	uint32_t weight;
	uint32_t uid;
	uint32_t counter; /* index into the per-worker counter block */
	/* a nat service with an IPv4 VIP: VIP -> this backend, source -> node_v4 */
	struct rw_nat4 nat4;
};

struct fwd_service {
	struct addr vip;
	uint16_t port;
	uint8_t proto;
	uint8_t mode;
	uint8_t announce;
	uint32_t n_backends;
	struct fwd_backend *backends; /* sorted by uid */
	struct maglev_table table;    /* slots index backends[] */
	uint64_t table_digest;	      /* fwd_table_digest(this), taken when the table was made */
	uint32_t counter;
};

struct fwd_state {
	uint64_t revision;
	uint32_t gen; /* unique per built state (wraps; never 0): validates flows' cached indexes */
	uint64_t hash_seed;
	uint8_t port_mac[6];
	uint8_t gateway_mac[6];
	uint8_t gateway_ok; /* gateway_mac is resolved: nat replies are dropped until it is */
	struct addr node_v4;
	struct addr node_v6;
	/*
	 * node_v4 is set and no service has it as VIP: a packet to it is a nat
	 * reply without a look at the services (node4 is its bytes, native).
	 */
	uint8_t node4_only;
	uint32_t node4;
	uint32_t n_services;
	struct fwd_service *services;
	/* VIP indexes, open addressing: on (vip, port, proto), and on vip alone */
	uint32_t vip_mask;
	uint32_t *vip_slots;     /* service index + 1; 0 = empty */
	uint32_t *vipaddr_slots; /* one service per VIP address, + 1; 0 = empty */
	/* Counters: n_workers blocks of n_counters, each block cache-aligned. */
	unsigned n_workers;
	uint32_t n_counters;
	size_t counter_stride; /* in struct fwd_counter units */
	struct fwd_counter *counters;
	uint32_t tables_reused; /* Maglev tables copied from the previous state (fwd_state_build_from) */
};

/*
 * Build a state from spec. Validates everything (families, modes, protocols,
 * duplicate services or backend identities, Maglev table sizes). On error
 * returns NULL and writes a message naming the service and backend into err.
 * Control thread only. The spec is not referenced afterwards.
 */
struct fwd_state *fwd_state_build(const struct fwd_spec *spec, char *err, size_t errlen);

/*
 * fwd_state_build, reusing the previous state's work: a service whose
 * Maglev inputs are those it had in prev (same VIP, port and protocol, table
 * size and hash seed, and the same backends with the same identities and
 * weights) gets a copy of its table instead of a new fill, which is what the
 * fill would give (maglev_build is a function of those inputs). A change of
 * one backend of one service then costs one fill, not one per service.
 * prev may be NULL (= fwd_state_build); it is only read, and must stay valid
 * for the call (the state the workers use: the builder publishes only after
 * the build). tables_reused in the result says how many tables were copied.
 */
struct fwd_state *fwd_state_build_from(const struct fwd_spec *spec, const struct fwd_state *prev,
				       char *err, size_t errlen);

/*
 * 64-bit digest of a service's table as it forwards: slot by slot, the uid
 * of the owning backend (0 for none), after the table size. The same on every
 * node for the same table; what cluster digests compare. A state keeps it in
 * table_digest (computed with the table, copied with it). Pure; any thread.
 */
uint64_t fwd_table_digest(const struct fwd_service *svc);

/* Free a state (control thread, after the grace period). NULL is fine. */
void fwd_state_free(struct fwd_state *st);

/* Worker w's counter for a service or backend (counter index). */
static inline struct fwd_counter *fwd_counter_of(const struct fwd_state *st, unsigned w,
						 uint32_t counter)
{
	return &st->counters[(size_t)w * st->counter_stride + counter];
}

/* Sum of all workers' counters for one counter index. Control thread. */
void fwd_counter_sum(const struct fwd_state *st, uint32_t counter, struct fwd_counter *out);

/* The service index for (vip, port, proto), or UINT32_MAX. Any thread. */
uint32_t fwd_find_service(const struct fwd_state *st, const struct addr *vip, uint16_t port,
			  uint8_t proto);

/* ---- Worker ---- */

struct fwd_worker {
	unsigned id; /* 0 .. n_workers-1; selects the counter block */
	struct flow_table *flows;
	struct flow_index flow_ix; /* flows' index arrays, for the burst's inline prefetches */
	struct snat_pool *snat_v4; /* may be NULL: nat over v4 then drops SNAT_EXHAUSTED */
	struct snat_pool *snat_v6;
	struct snat_refs snat_refs4; /* snat_v4's port references: a nat reply's flow entry */
	struct snat_refs snat_refs6;
	uint64_t drops[FWD_DROP__COUNT];
	uint64_t rx_pkts;
	uint64_t tx_pkts;
	uint64_t replies;
	uint64_t to_control;
	uint64_t flow_releases; /* entries that left the flow table (fwd_flow_release calls) */
};

/*
 * Initialise a worker: id, its flow table and SNAT pools (owned by the
 * caller, which must have created the flow table with fwd_flow_release as
 * release callback and the worker as its context so that SNAT ports return
 * to the pool). Counters zeroed.
 */
void fwd_worker_init(struct fwd_worker *w, unsigned id, struct flow_table *flows,
		     struct snat_pool *snat_v4, struct snat_pool *snat_v6);

/*
 * Flow-table release callback: returns a NAT flow's SNAT port to its pool
 * and counts the release (fwd_burst relies on that count to know when the
 * flow entries it looked up ahead may have been reused).
 */
void fwd_flow_release(void *worker, const struct flow_entry *e);

/*
 * Decide and rewrite one packet in place. b->data may move into the headroom
 * (tunnel). now is in nanoseconds (monotonic). st must stay valid for the
 * call (the worker holds its RCU read side). Fills res; returns res->verdict.
 */
int fwd_packet(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *b, uint64_t now,
	       struct fwd_result *res);

/*
 * The same for a burst of n packets (n <= FWD_BURST_MAX), in stages that
 * load each packet's flow bucket and entry before the decisions, so that the
 * cache misses of a burst overlap. Equivalent to n calls of fwd_packet in
 * order (the decisions and their lookups run in packet order).
 */
#define FWD_BURST_MAX 64
void fwd_burst(const struct fwd_state *st, struct fwd_worker *w, struct rw_buf *bufs,
	       unsigned n, uint64_t now, struct fwd_result *res);

/*
 * The cluster-wide flow hash of a 5-tuple: the value fed to Maglev. Every node
 * computes the same value for the same tuple and seed.
 */
uint64_t fwd_flow_hash(uint64_t seed, const struct addr *src, const struct addr *dst,
		       uint16_t sport, uint16_t dport, uint8_t proto);

#endif
