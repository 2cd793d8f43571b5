/* dpdk_dp: the DPDK runtime — EAL, one port, worker lcores running fwd_burst, RCU-published state. */
#ifndef FULCRUM_DATAPLANE_DPDK_DP_H
#define FULCRUM_DATAPLANE_DPDK_DP_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/addr.h"
#include "dataplane/flow.h"
#include "dataplane/fwd.h"

/*
 * Threads. The "control thread" is the EAL main lcore (the thread that
 * called dpdk_eal_init). Every function here is for the control thread only,
 * except where noted. Workers run on the EAL worker lcores, one per RX queue;
 * they never block, allocate, lock or log.
 *
 * Errors: 0 or a negative errno; functions taking err/errlen also write a
 * one-line reason there. No function exits the process.
 *
 * Everything DPDK-specific (rte_* headers) stays in dataplane/dpdk_*.c; the
 * parameters below are plain values filled by fulcrumd from its config.
 */

enum dpdk_idle {
	DPDK_IDLE_BUSY = 0,     /* poll without pause: one core per worker (production) */
	DPDK_IDLE_ADAPTIVE = 1, /* after idle_polls empty polls, sleep idle_sleep_us */
};

struct dpdk_params {
	const char *port_devargs; /* "net_af_packet0,iface=veth0", "0000:01:00.0", ... */
	uint16_t rx_desc;
	uint16_t tx_desc;
	uint16_t mtu; /* 0 = leave the port's MTU alone */
	unsigned workers;
	uint32_t mbufs;
	uint32_t mbuf_cache;
	uint16_t burst; /* 1 .. FWD_BURST_MAX */
	uint32_t tx_flush_us;
	enum dpdk_idle idle;
	uint32_t idle_polls;
	uint32_t idle_sleep_us;
	uint32_t flow_capacity; /* per worker */
	struct flow_timeouts timeouts;
	struct addr snat_v4;     /* node address used as SNAT source (ADDR_NONE = no v4 nat) */
	struct addr snat_v6;     /* the node's IPv6 address, the same for v6 (ADDR_NONE = none) */
	uint16_t snat_port_lo;   /* split between workers (snat_worker_range); both families */
	uint16_t snat_port_hi;
	uint64_t snat_seed;      /* port order (snat_create); 0 = ascending, for golden tests */
	uint32_t control_ring;   /* packets queued for the control thread (power of 2) */
};

struct dpdk_dp;

/*
 * rte_eal_init with argv (argv[0] is the program name). Call once, from the
 * thread that will be the control thread, before anything else here. Signals
 * the caller wants on its own thread should be blocked before this call: the
 * threads EAL creates inherit the mask. 0 or -errno (rte_errno).
 */
int dpdk_eal_init(int argc, char **argv, char *err, size_t errlen);

/* rte_eal_cleanup, after dpdk_close. */
void dpdk_eal_cleanup(void);

/*
 * Find and start the port, create the mempool, queues, per-worker flow tables
 * and SNAT pools, the control ring and the RCU variable. Workers are not
 * launched yet (dpdk_start). On success *out owns everything (dpdk_close).
 * Fails if the EAL has fewer worker lcores than p->workers, if the port
 * cannot spread packets over p->workers RX queues (neither RSS nor, for
 * net_af_packet, a kernel fanout group of exactly p->workers queue pairs),
 * or if the mempool is too small for the descriptors and caches of every
 * queue (with more than one worker, the handoff rings' rx_desc + burst mbufs
 * each count too). Each worker gets a SNAT pool per family with an address,
 * both over the worker's slice of the port range. With more than one worker
 * and a SNAT address of either family, each worker also gets a handoff ring
 * for nat replies that reached another worker (reply steering,
 * docs/dataplane.md).
 */
int dpdk_open(const struct dpdk_params *p, struct dpdk_dp **out, char *err, size_t errlen);

/* The port's MAC address (the source MAC of everything the node sends). */
void dpdk_port_mac(const struct dpdk_dp *dp, uint8_t mac[6]);

/* Number of workers (what fwd_spec.n_workers must be). */
unsigned dpdk_workers(const struct dpdk_dp *dp);

/* Launch the workers on their lcores. Publish a first state before or after. 0 or -errno. */
int dpdk_start(struct dpdk_dp *dp);

/*
 * THE single entry point for new forwarding state (config load, reload, ARP
 * changes, and later the Raft state machine). Takes ownership of st, a
 * complete state from fwd_state_build with n_workers == dpdk_workers(dp).
 * Swaps it in with one atomic pointer exchange (workers read the pointer once
 * per burst), waits for the RCU grace period (rte_rcu_qsbr: every online
 * worker has finished the iteration it may have started with the old
 * pointer; sleeping workers are offline and do not delay it), then calls
 * retire(ctx, old) if retire is not NULL, when the old state's counters are
 * final (to carry them over: a new state starts with zeroed counters), and
 * frees the old state with fwd_state_free. Blocks for at most about one loop
 * iteration of every busy worker. Returns 0; -EINVAL if st is NULL or was
 * built for another number of workers (st is then not taken: the caller
 * still owns it).
 */
int dpdk_publish(struct dpdk_dp *dp, struct fwd_state *st,
		 void (*retire)(void *ctx, const struct fwd_state *old), void *ctx);

/* The state the workers use now (owned by dp; valid until the next dpdk_publish). NULL before the first. */
const struct fwd_state *dpdk_state(const struct dpdk_dp *dp);

/*
 * Hand each packet the workers sent to the control thread (FWD_CONTROL:
 * ARP replies, others' ARP, ND) to fn, at most max of them; the frame is
 * only valid during the call. Returns how many were handled.
 */
unsigned dpdk_control_poll(struct dpdk_dp *dp, unsigned max,
			   void (*fn)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx);

/*
 * Send one frame built by the control thread (an ARP request). It goes out
 * of a TX queue reserved for the control thread when the port has one more
 * TX queue than workers, else through a ring that worker 0 drains into its
 * own TX queue at the top of its loop (a TX queue is not thread-safe).
 * 0, -ENOMEM (no mbuf), -ENOBUFS (queue or ring full: dropped), -EINVAL.
 */
int dpdk_control_send(struct dpdk_dp *dp, const uint8_t *frame, uint32_t len);

struct dpdk_link {
	int up;
	uint32_t speed_mbps; /* 0 = unknown */
	int full_duplex;
};

/* Current link status without waiting. 0 or -errno. */
int dpdk_link_get(struct dpdk_dp *dp, struct dpdk_link *out);

/*
 * Per-worker counters. Read while the worker runs: each 64-bit counter is
 * read whole (aligned 64-bit loads do not tear on the supported CPUs), but
 * the set is not one atomic snapshot. Sum over workers for node totals.
 */
struct dpdk_worker_stats {
	uint64_t rx;           /* packets received */
	uint64_t tx;           /* FWD_TX verdicts (forwarded) */
	uint64_t replies;      /* FWD_REPLY verdicts (ARP / echo replies) */
	uint64_t to_control;   /* FWD_CONTROL verdicts */
	uint64_t control_full; /* of those, dropped: control ring full */
	uint64_t tx_unsent;    /* freed because the TX queue did not take them */
	uint64_t multiseg;     /* dropped: chained mbuf (fwd needs one contiguous frame) */
	uint64_t injected;     /* control frames sent for the control thread (worker 0) */
	/*
	 * Reply steering (workers > 1): a frame from this worker's RX queue to
	 * the SNAT address and a port of another worker's slice is passed to
	 * that worker's handoff ring instead of being forwarded here (handoff;
	 * of those, handoff_full were dropped because the ring was full); the
	 * frames this worker took from its own ring are handoff_in. rx counts
	 * what fwd processed, handed-in frames included: the frames this
	 * worker's own RX queue delivered are rx - handoff_in + handoff (plus
	 * chained mbufs dropped as multiseg).
	 */
	uint64_t handoff;
	uint64_t handoff_full;
	uint64_t handoff_in;
	uint64_t sleeps;       /* adaptive idle sleeps */
	uint64_t expired;      /* flows released by the background sweep */
	uint64_t flows;        /* live flows now */
	/*
	 * Where the loop's time goes, from one iteration's start to the next's:
	 * iterations that received packets (busy) and empty polls (idle; the
	 * adaptive sleeps themselves are in neither). busy / (busy + idle) is
	 * the worker's load; busy / rx its cost per packet when it is not
	 * preempted.
	 */
	uint64_t busy_ns;
	uint64_t idle_ns;
	uint64_t drops[FWD_DROP__COUNT];
};
int dpdk_worker_stats(const struct dpdk_dp *dp, unsigned worker, struct dpdk_worker_stats *out);

struct dpdk_port_stats {
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
	uint64_t control_sent;    /* dpdk_control_send successes */
	uint64_t control_dropped; /* dpdk_control_send failures */
};
int dpdk_port_stats(struct dpdk_dp *dp, struct dpdk_port_stats *out);

/*
 * Stop: workers told to stop and joined (each flushes its TX buffer), the
 * port stopped and closed, the last state, flow tables, SNAT pools, rings and
 * mempool freed. Safe on a dp that was opened but never started. NULL is a
 * no-op.
 */
void dpdk_close(struct dpdk_dp *dp);

#endif
