/* dpdk_dp: EAL, port, workers (l3fwd-shaped loop around fwd_burst) and RCU publication of fwd_state. */
#include "dataplane/dpdk_dp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/pkt.h"
#include "dataplane/snat.h"

/*
 * Flow-table sweep (flow_expire). Busy: paced by the TSC, one chunk of
 * DPDK_SWEEP_CHUNK slots per interval, the interval chosen so that the whole
 * table is examined once per sweep period, whatever the packet rate. (8
 * slots after every burst, the earlier shape, swept 3.75M slots/s at 15 Mpps
 * whether the table held 8k flows or 1M; that cost ~1 ns/packet in
 * bench_dpdk_ring.) Idle: DPDK_EXPIRE_IDLE slots per empty poll, as before
 * (the adaptive idle policy's time to sleep depends on it), credited to the
 * busy schedule.
 */
#define DPDK_SWEEP_CHUNK 64
#define DPDK_EXPIRE_IDLE 256
/*
 * Sweep period: half the shortest idle timeout (an expired flow is released
 * at most 50 % late; a lookup already treats it as gone), within bounds.
 */
#define DPDK_SWEEP_PERIOD_MIN_NS (10ull * 1000 * 1000)
#define DPDK_SWEEP_PERIOD_MAX_NS (10ull * 1000 * 1000 * 1000)
/* Control frames worker 0 moves from the inject ring per flush tick (no spare TX queue). */
#define DPDK_INJECT_BURST 16

/*
 * Reply steering. A nat flow lives in the flow table of the worker that saw
 * its first packet, and that worker took the SNAT port from its own slice of
 * the port range (snat_worker_range). The reply (backend -> SNAT address and
 * port) is spread over the RX queues by RSS or the kernel's fanout hash,
 * independently of the request, so it reaches the owner only by chance. Each
 * worker therefore looks at the frames of its RX burst: IPv4 or IPv6 (one
 * optional 802.1Q tag), TCP or UDP, not a later fragment, to the SNAT address
 * of that family, with a destination port in another worker's slice; such a
 * frame goes to that worker's handoff ring, which the owner drains into its
 * own bursts. Both families' pools of a worker are made over the same slice
 * (dpdk_setup_workers), so one slice table serves both. A frame the owner
 * then does not know is dropped there as no_reverse_flow, as it would have
 * been without steering.
 *
 * DPVS does the same steering in hardware: NIC flow-director rules match the
 * local address and a port mask per core, so replies arrive on the right
 * queue. rte_flow rules would be that path here; they are not needed for
 * correctness (the virtual PMDs of the lab have none), and the software
 * check costs one predictable branch per burst with one worker and a few
 * header loads per frame with several.
 *
 * Not steered: later fragments (no ports: fwd drops them anyway), IPv6
 * frames with any extension header before TCP/UDP (see dpdk_steer_owner) and
 * ICMP errors quoting a nat flow (fwd handles them on whichever worker
 * receives them).
 */
struct dpdk_steer {
	uint32_t addr4;     /* SNAT v4 address, as memcpy'd from the frame (network order) */
	uint64_t addr6[2];  /* SNAT v6 address, likewise */
	uint8_t v4, v6;     /* which of the two the node has (the other is all zeros) */
	uint16_t lo, hi;   /* the whole SNAT port range */
	unsigned n;        /* workers */
	uint16_t *slice_hi;        /* worker i owns ports up to slice_hi[i] (ascending) */
	struct rte_ring **rings;   /* worker i's handoff ring (MP/SC) */
};

struct dpdk_worker {
	/* Written by this worker only (its counters are read by the control thread). */
	struct fwd_worker fw;
	struct dpdk_dp *dp;
	unsigned id;
	unsigned lcore;
	uint16_t queue; /* RX and TX queue id */
	struct flow_table *flows;
	struct snat_pool *snat_v4;
	struct snat_pool *snat_v6;
	struct rte_eth_dev_tx_buffer *txb;
	uint64_t tx_unsent; /* written by rte_eth_tx_buffer_count_callback */
	uint64_t control_full;
	uint64_t multiseg;
	uint64_t injected;
	uint64_t handoff;      /* frames passed to their owner's ring (see dpdk_steer) */
	uint64_t handoff_full; /* of those, dropped: ring full */
	uint64_t handoff_in;   /* frames taken from this worker's own ring */
	struct rte_ring *handoff_ring; /* = dp->steer.rings[id]; NULL with one worker */
	uint64_t sleeps;
	uint64_t expired;
	uint64_t next_sweep; /* TSC at which the next sweep chunk is due */
	uint64_t cycles[2];  /* TSC cycles in [0] empty polls, [1] iterations with packets */
} __rte_cache_aligned;

struct dpdk_dp {
	/* Read by every worker on every burst: keep it on its own line. */
	struct fwd_state *state __rte_cache_aligned;
	volatile int stop;
	struct rte_rcu_qsbr *qsbr;
	/* Set up by dpdk_open, read-only while the workers run. rings == NULL: no steering. */
	struct dpdk_steer steer;

	struct dpdk_params p;
	char devargs[256];
	uint16_t port;
	int port_found;
	int port_started;
	int launched;
	uint16_t ctl_txq;   /* UINT16_MAX = none: control frames go through inject */
	struct rte_ring *inject; /* control -> worker 0 (SP/SC) when there is no ctl_txq */
	struct rte_ring *to_control; /* workers -> control (MP/SC) */
	struct rte_mempool *pool;
	struct rte_ether_addr mac;
	uint64_t tsc_hz;
	uint64_t ns_mult; /* ns = (tsc * ns_mult) >> 32 */
	uint64_t sweep_period_tsc;      /* every flow-table slot examined once per period */
	uint64_t sweep_interval_tsc;    /* between busy chunks of sweep_chunk slots */
	uint64_t sweep_idle_credit_tsc; /* schedule time an idle sweep's slots are worth */
	uint32_t sweep_chunk;
	uint64_t control_sent;
	uint64_t control_dropped;
	unsigned n_workers;
	struct dpdk_worker *workers; /* rte_zmalloc'd, cache aligned */
};

static void dpdk_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dpdk_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int dpdk_eal_init(int argc, char **argv, char *err, size_t errlen)
{
	if (rte_eal_init(argc, argv) < 0) {
		int e = rte_errno ? rte_errno : EINVAL;
		dpdk_err(err, errlen, "EAL initialisation failed: %s", rte_strerror(e));
		return -e;
	}
	return 0;
}

void dpdk_eal_cleanup(void)
{
	rte_eal_cleanup();
}

/* ---- Worker ---- */

static inline uint64_t dpdk_tsc_ns(const struct dpdk_dp *dp, uint64_t tsc)
{
	return (uint64_t)(((unsigned __int128)tsc * dp->ns_mult) >> 32);
}

/*
 * Put a processed mbuf back in step with its rw_buf: fwd may have moved the
 * start (tunnel encapsulation prepends into the headroom) and the length.
 * Only what changed is written: the mbuf header was last written by whoever
 * filled it (the PMD, or another lcore on a software port), and a store that
 * changes nothing would still take the line away from that core.
 */
static inline void dpdk_sync_mbuf(struct rte_mbuf *m, const struct rw_buf *b)
{
	uint8_t *start = rte_pktmbuf_mtod(m, uint8_t *);

	if (unlikely(b->data != start)) {
		if (b->data < start)
			rte_pktmbuf_prepend(m, (uint16_t)(start - b->data));
		else
			rte_pktmbuf_adj(m, (uint16_t)(b->data - start));
	}
	if (unlikely(m->data_len != b->len || m->pkt_len != b->len)) {
		m->data_len = (uint16_t)b->len;
		m->pkt_len = b->len;
	}
	/* Checksums are complete in software: ask the NIC for nothing. */
	if (unlikely(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK))
		m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
}

/* Worker 0 sends the control thread's frames when the port has no spare TX queue. */
static inline void dpdk_worker_inject(struct dpdk_worker *w)
{
	struct rte_mbuf *m[DPDK_INJECT_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(w->dp->inject, (void **)m, DPDK_INJECT_BURST, NULL);

	for (unsigned i = 0; i < n; i++)
		rte_eth_tx_buffer(w->dp->port, w->queue, w->txb, m[i]);
	w->injected += n;
}

/*
 * The worker that owns the SNAT port a frame is addressed to, or -1 when the
 * frame is not a nat reply candidate (see dpdk_steer). Reads nothing at or
 * beyond d + len; anything it cannot read is left to fwd on this worker.
 */
static inline int dpdk_steer_owner(const struct dpdk_steer *s, const uint8_t *d, uint32_t len)
{
	uint32_t off = PKT_ETH_HLEN, l4;
	uint16_t et, port;
	const uint8_t *ip;

	if (unlikely(len < PKT_ETH_HLEN + PKT_VLAN_HLEN + 20 + 4))
		return -1; /* also too short for a tagged IPv4 header and ports: fwd decides */
	et = pkt_get16(d + 12);
	if (et == PKT_ETHERTYPE_VLAN) {
		et = pkt_get16(d + 16);
		off += PKT_VLAN_HLEN;
	}
	ip = d + off;
	if (et == PKT_ETHERTYPE_IPV4) {
		uint32_t ihl, addr;

		/* The destination first: one compare rules out all client -> VIP traffic. */
		memcpy(&addr, ip + 16, 4);
		if (addr != s->addr4 || !s->v4)
			return -1;
		ihl = (uint32_t)(ip[0] & 0x0f) * 4;
		if ((ip[0] >> 4) != 4 || ihl < 20 || (ip[9] != 6 /* TCP */ && ip[9] != 17 /* UDP */))
			return -1;
		/* A later fragment has no ports (fwd drops it); a first one has them. */
		if ((pkt_get16(ip + 6) & 0x1fff) != 0)
			return -1;
		l4 = off + ihl;
	} else if (et == PKT_ETHERTYPE_IPV6) {
		uint64_t a[2];

		if (off + 40 + 4 > len)
			return -1;
		memcpy(a, ip + 24, 16);
		if (((a[0] ^ s->addr6[0]) | (a[1] ^ s->addr6[1])) != 0 || !s->v6)
			return -1;
		/*
		 * TCP or UDP straight after the fixed header only. An extension
		 * header chain (a fragment header included) is not walked here:
		 * backends answering a nat flow send none in practice (Linux adds
		 * a fragment header only to a UDP reply above the path MTU), and
		 * walking it per frame would cost every frame for that case. Such
		 * a frame stays with this worker, and fwd parses the chain: the
		 * owner by chance forwards it, another worker counts it as
		 * no_reverse_flow (a later fragment as fragment), as every reply
		 * on the wrong worker was counted before steering.
		 */
		if ((ip[0] >> 4) != 6 || (ip[6] != 6 /* TCP */ && ip[6] != 17 /* UDP */))
			return -1;
		l4 = off + 40;
	} else {
		return -1;
	}
	if (l4 + 4 > len)
		return -1;
	port = pkt_get16(d + l4 + 2);
	if (port < s->lo || port > s->hi)
		return -1;
	/* The first slice that ends at or after the port (slices ascend). */
	unsigned a = 0, b = s->n - 1;
	while (a < b) {
		unsigned m = (a + b) / 2;
		if (port <= s->slice_hi[m])
			b = m;
		else
			a = m + 1;
	}
	return (int)a;
}

/*
 * Pass frames to the handoff rings of their owners, one enqueue per owner
 * (an MP enqueue is an atomic compare-and-swap on the ring's head: one per
 * burst, not per frame). What a ring does not take is freed and counted.
 */
static void dpdk_worker_handoff(struct dpdk_worker *w, struct rte_mbuf **m, uint16_t *dst,
				unsigned n)
{
	const struct dpdk_steer *s = &w->dp->steer;
	struct rte_mbuf *batch[FWD_BURST_MAX];

	while (n > 0) {
		unsigned owner = dst[0], k = 0, rest = 0;

		for (unsigned i = 0; i < n; i++) {
			if (dst[i] == owner) {
				batch[k++] = m[i];
			} else {
				m[rest] = m[i];
				dst[rest++] = dst[i];
			}
		}
		unsigned sent = rte_ring_mp_enqueue_burst(s->rings[owner], (void **)batch, k, NULL);
		w->handoff += k;
		if (unlikely(sent < k)) {
			w->handoff_full += k - sent;
			rte_pktmbuf_free_bulk(batch + sent, k - sent);
		}
		n = rest;
	}
}

/*
 * Keep the frames of an RX burst this worker owns (compacted at the front of
 * pkts, order kept), hand the others to their owners; returns how many were
 * kept. Only called with several workers.
 */
static unsigned dpdk_worker_steer(struct dpdk_worker *w, struct rte_mbuf **pkts, unsigned n)
{
	const struct dpdk_steer *s = &w->dp->steer;
	struct rte_mbuf *out[FWD_BURST_MAX];
	uint16_t dst[FWD_BURST_MAX];
	unsigned k = 0, no = 0;

	/* Headers, then frames, all issued before the first is read (as in dpdk_worker_burst). */
	for (unsigned i = 0; i < n; i++)
		rte_prefetch0(pkts[i]);
	for (unsigned i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		int owner = dpdk_steer_owner(s, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);

		if (likely(owner < 0 || (unsigned)owner == w->id)) {
			pkts[k++] = m;
			continue;
		}
		out[no] = m;
		dst[no++] = (uint16_t)owner;
	}
	if (no > 0)
		dpdk_worker_handoff(w, out, dst, no);
	return k;
}

static inline void dpdk_worker_burst(struct dpdk_worker *w, const struct fwd_state *st,
				     struct rte_mbuf **pkts, unsigned n, uint64_t now)
{
	struct dpdk_dp *dp = w->dp;
	struct rw_buf bufs[FWD_BURST_MAX];
	struct fwd_result res[FWD_BURST_MAX];
	struct rte_mbuf *dropped[FWD_BURST_MAX];
	unsigned k = 0, nd = 0;

	/*
	 * The mbuf headers first, all of them: the frame's address is in the
	 * header, so a header miss delays the frame's prefetch behind it. Issued
	 * together, the misses of the burst overlap instead of queuing.
	 */
	for (unsigned i = 0; i < n; i++)
		rte_prefetch0(pkts[i]);
	/*
	 * Map to rw_bufs and prefetch each frame. fwd_burst parses the frames
	 * only after this loop, so every frame's load is in flight before the
	 * first is needed (l3fwd's prefetch-ahead, with the whole burst as the
	 * distance).
	 */
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);

		if (unlikely(m->nb_segs != 1 || st == NULL)) {
			w->multiseg += m->nb_segs != 1;
			rte_pktmbuf_free(m);
			continue;
		}
		rte_prefetch0(data);
		pkts[k] = m;
		bufs[k].data = data;
		bufs[k].len = m->data_len;
		bufs[k].headroom = rte_pktmbuf_headroom(m);
		k++;
	}
	if (k == 0)
		return;

	fwd_burst(st, &w->fw, bufs, k, now, res);

	for (unsigned i = 0; i < k; i++) {
		struct rte_mbuf *m = pkts[i];
		switch (res[i].verdict) {
		case FWD_TX:
		case FWD_REPLY:
			dpdk_sync_mbuf(m, &bufs[i]);
			/* Buffered: sent when BURST packets are queued or at the flush timer. */
			rte_eth_tx_buffer(dp->port, w->queue, w->txb, m);
			break;
		case FWD_CONTROL:
			dpdk_sync_mbuf(m, &bufs[i]);
			if (rte_ring_mp_enqueue(dp->to_control, m) != 0) {
				w->control_full++;
				rte_pktmbuf_free(m);
			}
			break;
		default: /* FWD_DROP, already counted by fwd by reason */
			dropped[nd++] = m;
			break;
		}
	}
	/* One call per burst: a flood of drops (malformed, not for us) is the costly case. */
	if (nd > 0)
		rte_pktmbuf_free_bulk(dropped, nd);
}

/*
 * The sweep after a burst: one chunk when its interval has passed. No
 * catching up on missed intervals: a worker that was descheduled must not
 * spend its next bursts sweeping.
 */
static inline void dpdk_worker_sweep_busy(struct dpdk_worker *w, uint64_t tsc, uint64_t now)
{
	const struct dpdk_dp *dp = w->dp;

	if ((int64_t)(tsc - w->next_sweep) < 0)
		return;
	w->expired += flow_expire(w->flows, now, dp->sweep_chunk);
	w->next_sweep = tsc + dp->sweep_interval_tsc;
}

/*
 * The sweep on an empty poll: DPDK_EXPIRE_IDLE slots, credited to the busy
 * schedule up to one period ahead (a worker idle for a while has swept the
 * table and needs no busy sweeping for a period).
 */
static inline void dpdk_worker_sweep_idle(struct dpdk_worker *w, uint64_t tsc, uint64_t now)
{
	const struct dpdk_dp *dp = w->dp;
	uint64_t next = (int64_t)(w->next_sweep - tsc) > 0 ? w->next_sweep : tsc;

	w->expired += flow_expire(w->flows, now, DPDK_EXPIRE_IDLE);
	next += dp->sweep_idle_credit_tsc;
	if (next - tsc > dp->sweep_period_tsc)
		next = tsc + dp->sweep_period_tsc;
	w->next_sweep = next;
}

static int dpdk_worker_main(void *arg)
{
	struct dpdk_worker *w = arg;
	struct dpdk_dp *dp = w->dp;
	/* An RX burst plus as many frames from the handoff ring (reply steering). */
	struct rte_mbuf *pkts[2 * FWD_BURST_MAX];
	const uint64_t flush_tsc =
		(dp->tsc_hz + 999999) / 1000000 * (dp->p.tx_flush_us ? dp->p.tx_flush_us : 1);
	const uint16_t burst = dp->p.burst;
	const int adaptive = dp->p.idle == DPDK_IDLE_ADAPTIVE;
	const int injects = dp->inject != NULL && w->id == 0;
	struct rte_ring *const handoff = w->handoff_ring; /* NULL: one worker, no steering */
	uint64_t last_flush = rte_rdtsc();
	uint64_t prev_tsc = last_flush;
	unsigned prev_busy = 0;
	uint32_t idle = 0;

	w->next_sweep = last_flush;
	/*
	 * Adaptive idle sleeps for idle_sleep_us; Linux's default 50 us timer
	 * slack would stretch a 20 us sleep to ~70 us of added latency.
	 */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	rte_rcu_qsbr_thread_register(dp->qsbr, w->id);
	rte_rcu_qsbr_thread_online(dp->qsbr, w->id);

	while (!__atomic_load_n(&dp->stop, __ATOMIC_RELAXED)) {
		/*
		 * One TSC read per iteration (rdtsc costs ~15 ns here) for the
		 * flush timer, the sweep's pacing and fwd's clock.
		 */
		uint64_t tsc = rte_rdtsc();
		uint64_t now = dpdk_tsc_ns(dp, tsc);

		/* The previous iteration's length, by kind (load and cost per packet). */
		w->cycles[prev_busy] += tsc - prev_tsc;
		prev_tsc = tsc;

		if (unlikely(tsc - last_flush >= flush_tsc)) {
			/*
			 * Control frames (ARP requests) go out on this timer like any
			 * buffered packet, rather than costing a ring poll per loop.
			 */
			if (injects)
				dpdk_worker_inject(w);
			rte_eth_tx_buffer_flush(dp->port, w->queue, w->txb);
			last_flush = tsc;
		}

		/*
		 * The state pointer is read once per iteration and not used after
		 * the quiescent report at the bottom: that is the RCU read side.
		 */
		const struct fwd_state *st = __atomic_load_n(&dp->state, __ATOMIC_ACQUIRE);
		unsigned n = rte_eth_rx_burst(dp->port, w->queue, pkts, burst);
		int dry = n < burst, busy = n > 0;

		if (handoff != NULL) {
			/*
			 * Several workers: frames for another worker's SNAT ports leave
			 * the burst, and what the others steered here joins it, up to a
			 * burst of each, so that neither source can starve the other.
			 */
			if (n > 0)
				n = dpdk_worker_steer(w, pkts, n);
			unsigned in = rte_ring_sc_dequeue_burst(handoff, (void **)(pkts + n), burst,
								NULL);
			w->handoff_in += in;
			n += in;
			dry = dry && in < burst;
			busy = busy || in > 0;
		}
		prev_busy = busy;
		if (likely(busy)) {
			idle = 0;
			if (likely(n <= FWD_BURST_MAX)) {
				dpdk_worker_burst(w, st, pkts, n, now);
			} else { /* burst > FWD_BURST_MAX / 2 with handed-in frames */
				dpdk_worker_burst(w, st, pkts, FWD_BURST_MAX, now);
				dpdk_worker_burst(w, st, pkts + FWD_BURST_MAX, n - FWD_BURST_MAX, now);
			}
			/*
			 * The RX queue ran dry: nothing more will join this TX batch
			 * soon, so send it now instead of at the flush timer (which
			 * would add up to tx_flush_us to every lone request/response).
			 * Under load bursts are full and batching is unchanged.
			 */
			if (dry) {
				rte_eth_tx_buffer_flush(dp->port, w->queue, w->txb);
				last_flush = tsc;
			}
			dpdk_worker_sweep_busy(w, tsc, now);
			rte_rcu_qsbr_quiescent(dp->qsbr, w->id);
			continue;
		}

		dpdk_worker_sweep_idle(w, tsc, now);
		rte_rcu_qsbr_quiescent(dp->qsbr, w->id);
		if (!adaptive)
			continue;
		if (idle < dp->p.idle_polls) {
			idle++;
			continue;
		}
		/*
		 * Adaptive idle: send what is buffered, then sleep offline so that
		 * a publisher never waits for a sleeping worker.
		 */
		rte_eth_tx_buffer_flush(dp->port, w->queue, w->txb);
		last_flush = rte_rdtsc();
		rte_rcu_qsbr_thread_offline(dp->qsbr, w->id);
		rte_delay_us_sleep(dp->p.idle_sleep_us);
		rte_rcu_qsbr_thread_online(dp->qsbr, w->id);
		w->sleeps++;
		prev_tsc = rte_rdtsc(); /* the sleep counts as neither busy nor idle */
	}

	rte_eth_tx_buffer_flush(dp->port, w->queue, w->txb);
	rte_rcu_qsbr_thread_offline(dp->qsbr, w->id);
	rte_rcu_qsbr_thread_unregister(dp->qsbr, w->id);
	return 0;
}

/* ---- Setup ---- */

/* The ethdev name EAL gives the device: the devargs up to the first comma. */
static int dpdk_find_port(const char *devargs, uint16_t *port)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	size_t n = strcspn(devargs, ",");

	if (n >= sizeof(name))
		return -EINVAL;
	memcpy(name, devargs, n);
	name[n] = '\0';
	if (rte_eth_dev_get_port_by_name(name, port) == 0)
		return 0;
	/* A PCI address may be written short ("01:00.0"); with one port there is no doubt. */
	if (rte_eth_dev_count_avail() == 1) {
		uint16_t id;
		RTE_ETH_FOREACH_DEV(id)
		{
			*port = id;
			return 0;
		}
	}
	return -ENODEV;
}

static int dpdk_setup_workers(struct dpdk_dp *dp, char *err, size_t errlen)
{
	const struct dpdk_params *p = &dp->p;
	unsigned lcore, i = 0;

	dp->workers = rte_zmalloc("fc_workers", sizeof(*dp->workers) * p->workers,
				  RTE_CACHE_LINE_SIZE);
	if (dp->workers == NULL) {
		dpdk_err(err, errlen, "out of memory for workers");
		return -ENOMEM;
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (i == p->workers)
			break;
		struct dpdk_worker *w = &dp->workers[i];
		w->dp = dp;
		w->id = i;
		w->lcore = lcore;
		w->queue = (uint16_t)i;
		i++;
	}
	dp->n_workers = p->workers;

	for (i = 0; i < p->workers; i++) {
		struct dpdk_worker *w = &dp->workers[i];
		const int v4 = p->snat_v4.family == ADDR_V4, v6 = p->snat_v6.family == ADDR_V6;
		uint16_t lo, hi;

		if (v4 || v6) {
			if (snat_worker_range(p->snat_port_lo, p->snat_port_hi, i, p->workers, &lo,
					      &hi) != 0) {
				dpdk_err(err, errlen, "snat ports %u-%u cannot be split over %u workers",
					 p->snat_port_lo, p->snat_port_hi, p->workers);
				return -EINVAL;
			}
			/*
			 * Both families over the same slice: the addresses differ, so
			 * their ports never collide, and reply steering finds the
			 * owner of a port with one slice table (dpdk_steer). seed 0
			 * stays 0 (ascending ports): golden tests need a known order;
			 * the v6 pool draws its own order from another seed.
			 */
			uint64_t seed = p->snat_seed ? p->snat_seed ^ (i + 1) * 0x9e37ull : 0;
			if (v4)
				w->snat_v4 = snat_create(&p->snat_v4, lo, hi, seed);
			if (v6)
				w->snat_v6 = snat_create(&p->snat_v6, lo, hi,
							 seed ? seed ^ (0x5bd1e995ull << 32) : 0);
			if ((v4 && w->snat_v4 == NULL) || (v6 && w->snat_v6 == NULL)) {
				dpdk_err(err, errlen, "out of memory for SNAT pools");
				return -ENOMEM;
			}
		}
		/* fwd_flow_release returns SNAT ports to the pool when a flow leaves the table. */
		w->flows = flow_create(p->flow_capacity, &p->timeouts, fwd_flow_release, &w->fw);
		if (w->flows == NULL) {
			dpdk_err(err, errlen, "cannot create a flow table of %u flows",
				 p->flow_capacity);
			return -ENOMEM;
		}
		fwd_worker_init(&w->fw, i, w->flows, w->snat_v4, w->snat_v6);

		w->txb = rte_zmalloc_socket("fc_txb", RTE_ETH_TX_BUFFER_SIZE(p->burst), 0,
					    rte_eth_dev_socket_id(dp->port));
		if (w->txb == NULL) {
			dpdk_err(err, errlen, "out of memory for TX buffers");
			return -ENOMEM;
		}
		rte_eth_tx_buffer_init(w->txb, p->burst);
		/* What the TX queue does not take is freed and counted, never retried. */
		rte_eth_tx_buffer_set_err_callback(w->txb, rte_eth_tx_buffer_count_callback,
						   &w->tx_unsent);
	}
	return 0;
}

/*
 * The mbufs reply steering can hold beyond the queues, 0 when there is no
 * steering: per worker, a full handoff ring (rx_desc) plus the burst its owner
 * dequeued and is processing next to its RX burst.
 */
static uint64_t dpdk_steer_mbufs(const struct dpdk_params *p)
{
	if (p->workers < 2 || (p->snat_v4.family != ADDR_V4 && p->snat_v6.family != ADDR_V6))
		return 0;
	return (uint64_t)p->workers * ((uint64_t)p->rx_desc + p->burst);
}

/*
 * Reply steering (see dpdk_steer): the slice table and one handoff ring per
 * worker, when there are several workers and a SNAT address of either family.
 *
 * Ring size: rx_desc entries (RING_F_EXACT_SZ), the depth of one RX queue.
 * The ring is in effect a second RX queue of its owner, filled by the other
 * workers with replies a port-steering NIC would have put in the owner's own
 * queue; it has to hold what arrives while the owner is busy, sleeping
 * (adaptive idle) or descheduled (floating lcores), which is exactly what the
 * RX queue is sized for. A few bursts would be enough for a busy-polling
 * owner but would drop replies at every adaptive sleep. Producers enqueue
 * at most one RX burst per iteration and the owner takes up to one burst per
 * iteration besides its RX burst, so a ring that fills means the owner is
 * overloaded, as a full RX queue does. The mbufs a full ring holds come from
 * the same pool, and so does the burst the owner takes from it besides its
 * RX burst: dpdk_steer_mbufs counts both in the pool's minimum (as config.c
 * does for dataplane.mbufs), so that a full ring cannot starve the PMD.
 */
static int dpdk_setup_steer(struct dpdk_dp *dp, char *err, size_t errlen)
{
	const struct dpdk_params *p = &dp->p;
	struct dpdk_steer *s = &dp->steer;

	if (dpdk_steer_mbufs(p) == 0)
		return 0;
	s->slice_hi = rte_zmalloc("fc_steer", sizeof(*s->slice_hi) * p->workers, 0);
	s->rings = rte_zmalloc("fc_steer", sizeof(*s->rings) * p->workers, 0);
	if (s->slice_hi == NULL || s->rings == NULL) {
		dpdk_err(err, errlen, "out of memory for reply steering");
		return -ENOMEM;
	}
	s->v4 = p->snat_v4.family == ADDR_V4;
	s->v6 = p->snat_v6.family == ADDR_V6;
	if (s->v4)
		memcpy(&s->addr4, p->snat_v4.b, 4);
	if (s->v6)
		memcpy(s->addr6, p->snat_v6.b, 16);
	s->lo = p->snat_port_lo;
	s->hi = p->snat_port_hi;
	s->n = p->workers;
	for (unsigned i = 0; i < p->workers; i++) {
		uint16_t lo, hi;
		char name[RTE_RING_NAMESIZE];

		/* The same split the SNAT pools were made with (dpdk_setup_workers). */
		if (snat_worker_range(p->snat_port_lo, p->snat_port_hi, i, p->workers, &lo, &hi) != 0)
			return -EINVAL; /* dpdk_setup_workers refused it first */
		s->slice_hi[i] = hi;
		snprintf(name, sizeof(name), "fc_handoff%u", i);
		s->rings[i] = rte_ring_create(name, p->rx_desc, (int)rte_socket_id(),
					      RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (s->rings[i] == NULL) {
			dpdk_err(err, errlen, "handoff ring of worker %u: %s", i,
				 rte_strerror(rte_errno));
			return -rte_errno;
		}
		dp->workers[i].handoff_ring = s->rings[i];
	}
	return 0;
}

static int dpdk_setup_port(struct dpdk_dp *dp, char *err, size_t errlen)
{
	const struct dpdk_params *p = &dp->p;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int rc;

	rc = rte_eth_dev_info_get(dp->port, &info);
	if (rc != 0) {
		dpdk_err(err, errlen, "port %s: no device info (%s)", dp->devargs, strerror(-rc));
		return rc;
	}
	if (p->workers > info.max_rx_queues || p->workers > info.max_tx_queues) {
		dpdk_err(err, errlen,
			 "port %s (%s) has %u RX / %u TX queues, %u workers need one each "
			 "(af_packet: add qpairs=N to the devargs)",
			 dp->devargs, info.driver_name, info.max_rx_queues, info.max_tx_queues,
			 p->workers);
		return -EINVAL;
	}
	/*
	 * net_af_packet has no RSS but spreads by itself: each of its qpairs
	 * queue pairs is a packet socket of one PACKET_FANOUT group (DPDK 22.11:
	 * PACKET_FANOUT_HASH, the kernel's flow hash, with DEFRAG and ROLLOVER),
	 * so the kernel spreads flows over the sockets, and over every socket
	 * of the group: with more queue pairs than workers, what is hashed to a
	 * queue nobody polls sits there unread (ROLLOVER moves flows away only
	 * once that socket's ring is full).
	 */
	int fanout = strcmp(info.driver_name, "net_af_packet") == 0;
	if (fanout && info.max_rx_queues != p->workers) {
		dpdk_err(err, errlen,
			 "port %s (%s) has %u queue pairs in its kernel fanout group; %u "
			 "worker(s) need exactly as many (qpairs=%u in the devargs): packets the "
			 "kernel hashes to a queue nobody polls would sit there unread",
			 dp->devargs, info.driver_name, info.max_rx_queues, p->workers, p->workers);
		return -EINVAL;
	}
	memset(&conf, 0, sizeof(conf));
	if (p->workers > 1) {
		uint64_t hf = info.flow_type_rss_offloads &
			      (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else if (!fanout) {
			dpdk_err(err, errlen,
				 "port %s (%s) cannot spread packets over %u RX queues (no RSS, "
				 "no kernel fanout: everything would arrive on queue 0); use "
				 "workers = 1",
				 dp->devargs, info.driver_name, p->workers);
			return -EINVAL;
		}
	}
	/* One pool, reference count 1, freed on the queue's lcore: what FAST_FREE requires. */
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

	/* A spare TX queue lets the control thread send without touching a worker's queue. */
	uint16_t n_txq = (uint16_t)p->workers;
	dp->ctl_txq = UINT16_MAX;
	if (info.max_tx_queues > p->workers) {
		dp->ctl_txq = (uint16_t)p->workers;
		n_txq++;
	}
	rc = rte_eth_dev_configure(dp->port, (uint16_t)p->workers, n_txq, &conf);
	if (rc != 0) {
		dpdk_err(err, errlen, "port %s: configure with %u RX / %u TX queues: %s",
			 dp->devargs, p->workers, n_txq, strerror(-rc));
		return rc;
	}
	uint16_t nrx = p->rx_desc, ntx = p->tx_desc;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(dp->port, &nrx, &ntx);
	if (rc != 0) {
		dpdk_err(err, errlen, "port %s: descriptor counts: %s", dp->devargs, strerror(-rc));
		return rc;
	}
	if (p->mtu != 0) {
		rc = rte_eth_dev_set_mtu(dp->port, p->mtu);
		if (rc != 0 && rc != -ENOTSUP) {
			dpdk_err(err, errlen, "port %s: MTU %u: %s", dp->devargs, p->mtu,
				 strerror(-rc));
			return rc;
		}
	}
	int socket = rte_eth_dev_socket_id(dp->port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	for (uint16_t q = 0; q < p->workers; q++) {
		rc = rte_eth_rx_queue_setup(dp->port, q, nrx, (unsigned)socket, NULL, dp->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(dp->port, q, ntx, (unsigned)socket, NULL);
		if (rc != 0) {
			dpdk_err(err, errlen, "port %s: queue %u setup: %s", dp->devargs, q,
				 strerror(-rc));
			return rc;
		}
	}
	if (dp->ctl_txq != UINT16_MAX) {
		rc = rte_eth_tx_queue_setup(dp->port, dp->ctl_txq, ntx, (unsigned)socket, NULL);
		if (rc != 0) {
			dpdk_err(err, errlen, "port %s: control TX queue setup: %s", dp->devargs,
				 strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(dp->port);
	if (rc != 0) {
		dpdk_err(err, errlen, "port %s: start: %s", dp->devargs, strerror(-rc));
		return rc;
	}
	dp->port_started = 1;
	/*
	 * Promiscuous: DSR and the VIPs use the port MAC, but a port that also
	 * sees frames for other MACs must still pass ARP for announced VIPs.
	 * Not fatal: unicast to our MAC and broadcasts arrive anyway.
	 */
	(void)rte_eth_promiscuous_enable(dp->port);
	rte_eth_macaddr_get(dp->port, &dp->mac);
	return 0;
}

/* The sweep's chunk and interval for the table size and timeouts (see DPDK_SWEEP_CHUNK). */
static void dpdk_sweep_pace(struct dpdk_dp *dp)
{
	const struct flow_timeouts *to = &dp->p.timeouts;
	const uint64_t tmo[] = {to->tcp_syn, to->tcp_est, to->tcp_fin,
				to->tcp_closed, to->udp, to->other};
	uint64_t shortest = UINT64_MAX;
	uint32_t cap = dp->p.flow_capacity ? dp->p.flow_capacity : 1;

	for (unsigned i = 0; i < RTE_DIM(tmo); i++)
		if (tmo[i] != 0 && tmo[i] < shortest)
			shortest = tmo[i];
	uint64_t period_ns = RTE_MIN(RTE_MAX(shortest / 2, DPDK_SWEEP_PERIOD_MIN_NS),
				     DPDK_SWEEP_PERIOD_MAX_NS);
	dp->sweep_period_tsc = (uint64_t)((unsigned __int128)period_ns * dp->tsc_hz / 1000000000u);
	dp->sweep_chunk = RTE_MIN(cap, DPDK_SWEEP_CHUNK);
	dp->sweep_interval_tsc = RTE_MAX(dp->sweep_period_tsc * dp->sweep_chunk / cap, 1);
	dp->sweep_idle_credit_tsc = dp->sweep_interval_tsc * DPDK_EXPIRE_IDLE / dp->sweep_chunk;
}

int dpdk_open(const struct dpdk_params *p, struct dpdk_dp **out, char *err, size_t errlen)
{
	struct dpdk_dp *dp;
	int rc;

	*out = NULL;
	if (p->workers == 0 || p->burst == 0 || p->burst > FWD_BURST_MAX || p->port_devargs == NULL ||
	    p->rx_desc == 0 || p->tx_desc == 0) {
		dpdk_err(err, errlen, "bad dataplane parameters (workers, burst 1..%d, descriptors)",
			 FWD_BURST_MAX);
		return -EINVAL;
	}
	if (rte_lcore_count() < p->workers + 1) {
		dpdk_err(err, errlen,
			 "EAL has %u lcores: one for control plus %u workers are needed "
			 "(dataplane.lcores)",
			 rte_lcore_count(), p->workers);
		return -EINVAL;
	}
	/*
	 * Every RX descriptor may hold an mbuf, every TX descriptor and TX buffer
	 * one in flight, each lcore's mempool cache some more, and with reply
	 * steering each handoff ring and the burst taken from it (the same sum
	 * config.c checks dataplane.mbufs against).
	 */
	uint64_t need = (uint64_t)p->workers * ((uint64_t)p->rx_desc + p->tx_desc + 2u * p->burst) +
			(uint64_t)(p->workers + 1) * p->mbuf_cache + dpdk_steer_mbufs(p);
	if (p->mbufs < need) {
		dpdk_err(err, errlen, "dataplane.mbufs = %u is too small: at least %" PRIu64
			 " for these queues, descriptors, caches and handoff rings", p->mbufs, need);
		return -EINVAL;
	}

	dp = rte_zmalloc("fc_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL) {
		dpdk_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dp->p = *p;
	snprintf(dp->devargs, sizeof(dp->devargs), "%s", p->port_devargs);
	dp->p.port_devargs = dp->devargs;
	dp->ctl_txq = UINT16_MAX;
	dp->tsc_hz = rte_get_tsc_hz();
	dp->ns_mult = (uint64_t)(((unsigned __int128)1000000000u << 32) / dp->tsc_hz);
	dpdk_sweep_pace(dp);

	rc = dpdk_find_port(dp->devargs, &dp->port);
	if (rc != 0) {
		dpdk_err(err, errlen,
			 "port %s not found (EAL probed %u ports; check the vdev name/PCI address)",
			 dp->devargs, rte_eth_dev_count_avail());
		goto fail;
	}
	dp->port_found = 1;
	dp->pool = rte_pktmbuf_pool_create("fc_mbufs", p->mbufs, p->mbuf_cache, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (dp->pool == NULL) {
		rc = -rte_errno;
		dpdk_err(err, errlen, "mempool of %u mbufs: %s", p->mbufs, rte_strerror(rte_errno));
		goto fail;
	}
	uint32_t ring = p->control_ring ? rte_align32pow2(p->control_ring) : 1024;
	dp->to_control = rte_ring_create("fc_to_ctl", ring, (int)rte_socket_id(), RING_F_SC_DEQ);
	if (dp->to_control == NULL) {
		rc = -rte_errno;
		dpdk_err(err, errlen, "control ring: %s", rte_strerror(rte_errno));
		goto fail;
	}
	size_t qsz = rte_rcu_qsbr_get_memsize(p->workers);
	dp->qsbr = rte_zmalloc("fc_qsbr", qsz, RTE_CACHE_LINE_SIZE);
	if (dp->qsbr == NULL || rte_rcu_qsbr_init(dp->qsbr, p->workers) != 0) {
		rc = -ENOMEM;
		dpdk_err(err, errlen, "RCU variable for %u workers", p->workers);
		goto fail;
	}
	rc = dpdk_setup_workers(dp, err, errlen);
	if (rc != 0)
		goto fail;
	rc = dpdk_setup_steer(dp, err, errlen);
	if (rc != 0)
		goto fail;
	rc = dpdk_setup_port(dp, err, errlen);
	if (rc != 0)
		goto fail;
	if (dp->ctl_txq == UINT16_MAX) {
		dp->inject = rte_ring_create("fc_inject", 256, (int)rte_socket_id(),
					     RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (dp->inject == NULL) {
			rc = -rte_errno;
			dpdk_err(err, errlen, "inject ring: %s", rte_strerror(rte_errno));
			goto fail;
		}
	}
	*out = dp;
	return 0;
fail:
	dpdk_close(dp);
	return rc < 0 ? rc : -EINVAL;
}

void dpdk_port_mac(const struct dpdk_dp *dp, uint8_t mac[6])
{
	memcpy(mac, dp->mac.addr_bytes, 6);
}

unsigned dpdk_workers(const struct dpdk_dp *dp)
{
	return dp->n_workers;
}

int dpdk_start(struct dpdk_dp *dp)
{
	for (unsigned i = 0; i < dp->n_workers; i++) {
		int rc = rte_eal_remote_launch(dpdk_worker_main, &dp->workers[i],
					       dp->workers[i].lcore);
		if (rc != 0) {
			/* Stop those already running; dpdk_close joins them. */
			__atomic_store_n(&dp->stop, 1, __ATOMIC_RELAXED);
			dp->launched = 1;
			return rc;
		}
	}
	dp->launched = 1;
	return 0;
}

int dpdk_publish(struct dpdk_dp *dp, struct fwd_state *st,
		 void (*retire)(void *ctx, const struct fwd_state *old), void *ctx)
{
	if (st == NULL || st->n_workers != dp->n_workers)
		return -EINVAL;
	/* Release: the workers that load the new pointer see the state fully built. */
	struct fwd_state *old = __atomic_exchange_n(&dp->state, st, __ATOMIC_ACQ_REL);
	if (old == NULL)
		return 0;
	/*
	 * Grace period: wait until every online worker has reported a quiescent
	 * state (end of a loop iteration) after the exchange; none can still
	 * hold `old` then. Offline (sleeping, stopped) workers are skipped.
	 */
	rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
	if (retire != NULL)
		retire(ctx, old);
	fwd_state_free(old);
	return 0;
}

const struct fwd_state *dpdk_state(const struct dpdk_dp *dp)
{
	return __atomic_load_n(&dp->state, __ATOMIC_ACQUIRE);
}

unsigned dpdk_control_poll(struct dpdk_dp *dp, unsigned max,
			   void (*fn)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx)
{
	struct rte_mbuf *m[32];
	unsigned done = 0;

	while (done < max) {
		unsigned want = max - done < 32 ? max - done : 32;
		unsigned n = rte_ring_sc_dequeue_burst(dp->to_control, (void **)m, want, NULL);
		for (unsigned i = 0; i < n; i++) {
			fn(ctx, rte_pktmbuf_mtod(m[i], const uint8_t *), m[i]->data_len);
			rte_pktmbuf_free(m[i]);
		}
		done += n;
		if (n < want)
			break;
	}
	return done;
}

int dpdk_control_send(struct dpdk_dp *dp, const uint8_t *frame, uint32_t len)
{
	if (len == 0 || len > RTE_MBUF_DEFAULT_DATAROOM) {
		dp->control_dropped++;
		return -EINVAL;
	}
	struct rte_mbuf *m = rte_pktmbuf_alloc(dp->pool);
	if (m == NULL) {
		dp->control_dropped++;
		return -ENOMEM;
	}
	uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (d == NULL) {
		rte_pktmbuf_free(m);
		dp->control_dropped++;
		return -EINVAL;
	}
	memcpy(d, frame, len);
	int sent;
	if (dp->ctl_txq != UINT16_MAX)
		sent = rte_eth_tx_burst(dp->port, dp->ctl_txq, &m, 1) == 1;
	else
		sent = rte_ring_sp_enqueue(dp->inject, m) == 0;
	if (!sent) {
		rte_pktmbuf_free(m);
		dp->control_dropped++;
		return -ENOBUFS;
	}
	dp->control_sent++;
	return 0;
}

int dpdk_link_get(struct dpdk_dp *dp, struct dpdk_link *out)
{
	struct rte_eth_link link;
	int rc;

	memset(&link, 0, sizeof(link));
	rc = rte_eth_link_get_nowait(dp->port, &link);
	if (rc != 0)
		return rc;
	out->up = link.link_status == RTE_ETH_LINK_UP;
	out->speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
	out->full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	return 0;
}

/* A whole 64-bit load of a counter another thread increments (see dpdk_dp.h). */
static inline uint64_t dpdk_rd(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int dpdk_worker_stats(const struct dpdk_dp *dp, unsigned worker, struct dpdk_worker_stats *out)
{
	if (worker >= dp->n_workers)
		return -EINVAL;
	const struct dpdk_worker *w = &dp->workers[worker];
	memset(out, 0, sizeof(*out));
	out->rx = dpdk_rd(&w->fw.rx_pkts);
	out->tx = dpdk_rd(&w->fw.tx_pkts);
	out->replies = dpdk_rd(&w->fw.replies);
	out->to_control = dpdk_rd(&w->fw.to_control);
	out->control_full = dpdk_rd(&w->control_full);
	out->tx_unsent = dpdk_rd(&w->tx_unsent);
	out->multiseg = dpdk_rd(&w->multiseg);
	out->injected = dpdk_rd(&w->injected);
	out->handoff = dpdk_rd(&w->handoff);
	out->handoff_full = dpdk_rd(&w->handoff_full);
	out->handoff_in = dpdk_rd(&w->handoff_in);
	out->sleeps = dpdk_rd(&w->sleeps);
	out->expired = dpdk_rd(&w->expired);
	out->flows = w->flows ? flow_count(w->flows) : 0;
	out->busy_ns = dpdk_tsc_ns(dp, dpdk_rd(&w->cycles[1]));
	out->idle_ns = dpdk_tsc_ns(dp, dpdk_rd(&w->cycles[0]));
	for (unsigned r = 0; r < FWD_DROP__COUNT; r++)
		out->drops[r] = dpdk_rd(&w->fw.drops[r]);
	return 0;
}

int dpdk_port_stats(struct dpdk_dp *dp, struct dpdk_port_stats *out)
{
	struct rte_eth_stats s;
	int rc = rte_eth_stats_get(dp->port, &s);

	memset(out, 0, sizeof(*out));
	out->control_sent = dp->control_sent;
	out->control_dropped = dp->control_dropped;
	if (rc != 0)
		return rc;
	out->ipackets = s.ipackets;
	out->opackets = s.opackets;
	out->ibytes = s.ibytes;
	out->obytes = s.obytes;
	out->imissed = s.imissed;
	out->ierrors = s.ierrors;
	out->oerrors = s.oerrors;
	out->rx_nombuf = s.rx_nombuf;
	return 0;
}

void dpdk_close(struct dpdk_dp *dp)
{
	if (dp == NULL)
		return;
	if (dp->launched) {
		__atomic_store_n(&dp->stop, 1, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < dp->n_workers; i++)
			rte_eal_wait_lcore(dp->workers[i].lcore);
		dp->launched = 0;
	}
	if (dp->port_started) {
		rte_eth_dev_stop(dp->port);
		dp->port_started = 0;
	}
	if (dp->port_found) /* close it even if configure or start failed */
		rte_eth_dev_close(dp->port);
	/* Workers are joined: no grace period needed for the last state. */
	fwd_state_free(dp->state);
	dp->state = NULL;
	if (dp->workers != NULL) {
		for (unsigned i = 0; i < dp->p.workers; i++) {
			struct dpdk_worker *w = &dp->workers[i];
			flow_destroy(w->flows); /* returns SNAT ports through fwd_flow_release */
			snat_destroy(w->snat_v4);
			snat_destroy(w->snat_v6);
			rte_free(w->txb);
		}
		rte_free(dp->workers);
	}
	if (dp->to_control != NULL) {
		struct rte_mbuf *m;
		while (rte_ring_sc_dequeue(dp->to_control, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(dp->to_control);
	}
	if (dp->inject != NULL) {
		struct rte_mbuf *m;
		while (rte_ring_sc_dequeue(dp->inject, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(dp->inject);
	}
	/* Workers are joined: what is left in the handoff rings is nobody's. */
	for (unsigned i = 0; dp->steer.rings != NULL && i < dp->steer.n; i++) {
		struct rte_mbuf *m;
		if (dp->steer.rings[i] == NULL)
			continue;
		while (rte_ring_sc_dequeue(dp->steer.rings[i], (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(dp->steer.rings[i]);
	}
	rte_free(dp->steer.rings);
	rte_free(dp->steer.slice_hi);
	rte_mempool_free(dp->pool);
	rte_free(dp->qsbr);
	rte_free(dp);
}
