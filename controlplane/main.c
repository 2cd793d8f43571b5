/* fulcrumd: one node of Fulcrum — config, DPDK dataplane, ARP, signals, counters, cluster (control thread). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "controlplane/api.h"
#include "controlplane/cluster.h"
#include "controlplane/config.h"
#include "controlplane/log.h"
#include "controlplane/neigh.h"
#include "dataplane/addr.h"
#include "dataplane/dpdk_dp.h"
#include "dataplane/fwd.h"
#include "dataplane/hash.h"
#include "dataplane/pkt.h"

/* The control loop's tick: drains the control ring and runs the ARP/ND and MLD timers. */
#define TICK_MS 5
/*
 * At most one forwarding-state build per this interval for new revisions: a
 * build recomputes every service's Maglev table (about 1.4 ms for M = 65537;
 * 5-10 ms for 20 services of M = 4099 with 20k backends), so under a stream
 * of writes one build covers many revisions.
 */
#define REBUILD_MIN_NS (50 * 1000000ull)
/*
 * And builds for new revisions use at most 1/BUILD_CPU_DIV of a core (5%):
 * after a build that took T of CPU, the next one starts no sooner than
 * BUILD_CPU_DIV * T after it. The cost of a build grows with the whole
 * state, not with the change, so without this bound a large state under a
 * stream of writes had three nodes spend half of this 2-core machine on
 * rebuilding tables (docs/cluster.md). The dataplane then lags the applied
 * revision by at most max(REBUILD_MIN_NS, BUILD_CPU_DIV * T) plus one build;
 * the first build after a quiet period starts at once.
 */
#define BUILD_CPU_DIV 20
/*
 * Cluster mode builds on a thread of its own (see struct builder), at this
 * nice value: the control thread (Raft, the API, fsync) wins the CPU when
 * both want it, and a build takes the CPU that is left. Not SCHED_IDLE: a
 * saturated machine must still publish new revisions, only more slowly.
 */
#define BUILDER_NICE	 10
#define NEIGH_TICK_NS (50 * 1000000ull)
#define CONTROL_POLL_MAX 256
#define NEIGH_CAPACITY 4096
/*
 * MLDv2 reports (neigh.h, neigh_mld): a change of groups is reported at once
 * and once more a second later (RFC 3810 9.1 and 9.11: Robustness Variable
 * 2, Unsolicited Report Interval 1 s), and the whole set every minute. The
 * workers drop MLD queries (nothing in fwd hands them over), so fulcrumd
 * cannot answer them; an unsolicited refresh well inside the default
 * Multicast Address Listening Interval (260 s) keeps the groups alive in
 * queriers and snooping switches, as many appliances do.
 */
#define MLD_INTERVAL_NS 1000000000ull
#define MLD_REFRESH_NS (60 * 1000000000ull)
#define MLD_ROBUSTNESS 2
#define STATUS_EVERY_NS 100000000ull /* --status-file refresh */

/*
 * Counters of states already retired, so that SIGUSR1 shows totals since
 * start: one entry per service (uid 0: backend uids are never 0) and per
 * backend, found by identity through one hash index.
 */
struct carry_be {
	struct addr vip;
	uint16_t port;
	uint8_t proto;
	uint32_t uid;
	struct fwd_counter c;
};

/*
 * One forwarding-state build: its inputs are captured on the control thread
 * (the replicated state and the neighbour table belong to it), the build
 * itself (fwd_state_build + the digest) needs nothing but the spec, and the
 * result is published on the control thread again.
 */
struct build_job {
	struct fwd_spec spec;
	int from_sm;  /* spec from sm_to_spec (else config_to_spec) */
	int had_need; /* need_rebuild was set when the inputs were taken */
	const char *why;
	uint32_t n_services; /* for the log line */
	uint32_t skipped;    /* replicated services this node cannot serve (sm_to_spec) */
	unsigned resolved, total;
	uint8_t gw_mac[6];
	/*
	 * The state the workers use when the inputs were taken: the build copies
	 * its unchanged Maglev tables (fwd_state_build_from). Valid until
	 * build_finish publishes, which is after build_run (one build at a time).
	 */
	const struct fwd_state *prev;
	struct fwd_state *st; /* the result; NULL with err on refusal */
	uint64_t digest;
	uint64_t cpu_ns;  /* CPU time of build_run, on the thread that ran it */
	uint64_t prep_ns; /* CPU time of build_prepare (control thread) */
	char err[512];
};

/*
 * The builder thread (cluster mode). A build of a large state takes
 * milliseconds; on the control thread it stalled Raft (appends, acks, fsync)
 * and the API for that long on every new revision. Here it overlaps them.
 * At most one build is in flight, and every fwd_state_build call of the
 * process is either on this thread or on the control thread while this one
 * is idle (rebuild() drains it first): fwd_state_build is never run twice at
 * once, and the mutex orders one call before the next. fwd.h says "control
 * thread"; what fwd.c relies on (its private generation counter) is one
 * builder at a time, which this keeps. A change there that needs the
 * control thread itself must move build_run back (docs/cluster.md).
 */
struct builder {
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int submitted; /* job handed over, result not yet collected (control thread's view) */
	int have_job;  /* guarded by mu: a job waits for the thread */
	int done;      /* guarded by mu: the job's result is ready */
	int quit;      /* guarded by mu */
	int efd;       /* eventfd: the thread tells the loop a result is ready */
	struct event *ev;
	struct build_job job;
};

struct app {
	struct fulcrum_config cfg;
	struct dpdk_dp *dp;
	struct neigh_table *neigh;
	struct event_base *base;
	uint8_t port_mac[6];
	uint64_t revision;
	int need_rebuild;
	int exit_code;
	struct dpdk_link link;
	int link_known;
	uint64_t last_link_check;
	uint64_t last_stats;
	uint32_t stats_interval_s;
	uint64_t arp_learned;
	uint64_t control_other;
	struct carry_be *cbe;
	size_t n_cbe;
	uint32_t *cbe_idx; /* open addressing over cbe[]: index + 1, 0 = empty */
	size_t cbe_mask;
	/* cluster mode (cfg.cluster.enabled): forwarding state from the replicated state */
	struct cluster *cluster;
	struct api *api;
	struct sm_state *empty_sm; /* published until the cluster is seeded */
	int cluster_failed;
	const char *status_file;
	uint64_t last_status;
	uint64_t last_applied_rebuild; /* mono ns of the last rebuild for a new revision */
	uint64_t last_build_cpu_ns;    /* CPU time of the last build (BUILD_CPU_DIV) */
	uint32_t last_skipped;	       /* services left out of the last published state */
	uint64_t last_neigh_tick;
	/*
	 * MLD: the solicited-node groups of the node's IPv6 addresses, taken
	 * from the published state (gen) by mld_sync. mld_active: the node has
	 * an IPv6 address or announces an IPv6 VIP; it then also owns
	 * link_local, the reports' source (RFC 3810 5.2.13), which the control
	 * thread answers solicitations for.
	 */
	struct neigh_mld *mld;
	struct addr link_local;
	uint32_t mld_gen;
	int mld_active;
	struct builder bld;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fulcrumd -c FILE [--check] [--stats-interval SEC] [--status-file PATH]\n"
		"  -c, --config FILE       configuration file (libconfig)\n"
		"      --check             validate FILE and exit (0 = valid); starts nothing\n"
		"      --stats-interval S  also print the counters every S seconds\n"
		"      --status-file PATH  cluster mode: keep PATH updated (key=value lines: role,\n"
		"                          term, leader, revision, forwarding digest ...)\n"
		"  -h, --help              this text\n"
		"signals: SIGINT/SIGTERM stop, SIGHUP reloads FILE, SIGUSR1 prints counters\n");
}

/* ---- EAL arguments ---- */

struct eal_argv {
	int argc;
	char *argv[64 + CFG_MAX_EAL_ARGS];
	char buf[16][CFG_DEVARGS_MAX + 16];
	int nbuf;
};

static void eal_push(struct eal_argv *a, const char *s)
{
	if (a->argc < (int)(sizeof(a->argv) / sizeof(a->argv[0])) - 1)
		a->argv[a->argc++] = (char *)s;
	a->argv[a->argc] = NULL;
}

/* Push prefix + value as one argument (e.g. "--vdev=" + devargs). */
static void eal_pushf(struct eal_argv *a, const char *prefix, const char *value)
{
	if (a->nbuf >= 16)
		return;
	char *b = a->buf[a->nbuf++];
	snprintf(b, sizeof(a->buf[0]), "%s%s", prefix, value);
	eal_push(a, b);
}

static int is_vdev(const char *devargs)
{
	/* Virtual PMDs are named net_<driver><n> (net_af_packet0, net_pcap0, net_ring0 ...). */
	return strncmp(devargs, "net_", 4) == 0 || strncmp(devargs, "eth_", 4) == 0;
}

static void build_eal_args(const struct fulcrum_config *cfg, struct eal_argv *a)
{
	const struct cfg_dataplane *d = &cfg->dp;
	int user_pci = 0;

	memset(a, 0, sizeof(*a));
	eal_push(a, "fulcrumd");
	char num[16];
	if (d->lcores[0] != '\0') {
		eal_pushf(a, "--lcores=", d->lcores);
	} else {
		snprintf(num, sizeof(num), "%u", d->workers);
		eal_pushf(a, "-l0-", num);
	}
	if (d->memory_mb != 0) {
		snprintf(num, sizeof(num), "%u", d->memory_mb);
		eal_pushf(a, "-m", num);
	}
	if (d->no_huge)
		eal_push(a, "--no-huge");
	/*
	 * EAL refuses --in-memory with --no-huge (it implies legacy memory).
	 * Without hugepages the only shared files left are the runtime config
	 * files, and --no-shconf drops those: the same effect, accepted.
	 */
	if (d->in_memory)
		eal_push(a, d->no_huge ? "--no-shconf" : "--in-memory");
	if (d->file_prefix[0] != '\0')
		eal_pushf(a, "--file-prefix=", d->file_prefix);
	for (unsigned i = 0; i < d->n_eal_args; i++) {
		const char *s = d->eal_args[i];
		if (strncmp(s, "-a", 2) == 0 || strncmp(s, "--allow", 7) == 0 ||
		    strncmp(s, "-b", 2) == 0 || strncmp(s, "--block", 7) == 0 ||
		    strcmp(s, "--no-pci") == 0)
			user_pci = 1;
	}
	if (is_vdev(d->port_devargs)) {
		eal_pushf(a, "--vdev=", d->port_devargs);
		/* A virtual port only: do not probe (or grab) the machine's PCI devices. */
		if (!user_pci)
			eal_push(a, "--no-pci");
	} else if (!user_pci) {
		eal_pushf(a, "-a", d->port_devargs);
	}
	for (unsigned i = 0; i < d->n_eal_args; i++)
		eal_push(a, d->eal_args[i]);
}

/*
 * A net_pcap port replays a capture: nothing listens on it, and the golden
 * tests compare its output frame for frame. There fulcrumd is deterministic:
 * SNAT ports in ascending order (seed 0) and no MLD reports of its own.
 */
static int port_is_replay(const struct cfg_dataplane *d)
{
	return strncmp(d->port_devargs, "net_pcap", 8) == 0;
}

static void build_params(const struct fulcrum_config *cfg, struct dpdk_params *p)
{
	const struct cfg_dataplane *d = &cfg->dp;

	memset(p, 0, sizeof(*p));
	p->port_devargs = d->port_devargs;
	p->rx_desc = d->rx_desc;
	p->tx_desc = d->tx_desc;
	p->mtu = d->mtu;
	p->workers = d->workers;
	p->mbufs = d->mbufs;
	p->mbuf_cache = d->mbuf_cache;
	p->burst = d->burst;
	p->tx_flush_us = d->tx_flush_us;
	p->idle = d->idle == CFG_IDLE_ADAPTIVE ? DPDK_IDLE_ADAPTIVE : DPDK_IDLE_BUSY;
	p->idle_polls = d->idle_polls;
	p->idle_sleep_us = d->idle_sleep_us;
	p->flow_capacity = d->flow_capacity;
	p->timeouts = d->timeouts;
	p->snat_v4 = cfg->node_v4;
	p->snat_v6 = cfg->node_v6;
	p->snat_port_lo = d->snat_port_lo;
	p->snat_port_hi = d->snat_port_hi;
	p->control_ring = 1024;
	/* RFC 6056: unpredictable SNAT ports, except in a replay (port_is_replay) */
	p->snat_seed = 0;
	if (!port_is_replay(d) &&
	    getrandom(&p->snat_seed, sizeof(p->snat_seed), 0) != (ssize_t)sizeof(p->snat_seed))
		p->snat_seed = mono_ns() ^ (uint64_t)getpid() << 32;
}

/* ---- Neighbours ---- */

static int neigh_cb(void *ctx, const struct addr *a, uint8_t mac[6])
{
	struct app *app = ctx;
	return neigh_lookup(app->neigh, a, mac);
}

/* Static entries and the wanted set (every v4 backend and the gateway) from the config. */
static int neigh_sync_config(struct app *app, uint64_t now)
{
	const struct fulcrum_config *cfg = &app->cfg;
	struct addr *want;
	uint32_t n = 0, cap = 1;
	int rc;

	neigh_set_timers(app->neigh, (uint64_t)cfg->dp.arp_timeout_s * 1000000000ull,
			 (uint64_t)cfg->dp.arp_retry_ms * 1000000ull);
	neigh_clear_static(app->neigh);
	for (uint32_t i = 0; i < cfg->n_neighbours; i++) {
		rc = neigh_add_static(app->neigh, &cfg->neighbours[i].addr, cfg->neighbours[i].mac);
		if (rc != 0) {
			char b[ADDR_STRLEN];
			log_warn("static neighbour %s: %s",
				 addr_format(&cfg->neighbours[i].addr, b, sizeof(b)), strerror(-rc));
		}
	}
	/* In cluster mode the backends are the replicated state's, not the file's. */
	const struct sm_state *sm = app->cluster != NULL ? cluster_state(app->cluster) : NULL;
	uint32_t nsvc = sm != NULL ? sm_service_count(sm) : cfg->n_services;
	for (uint32_t i = 0; i < nsvc; i++)
		cap += sm != NULL ? sm_service_at(sm, i)->n_backends : cfg->services[i].n_backends;
	want = calloc(cap, sizeof(*want));
	if (want == NULL)
		return -ENOMEM;
	/*
	 * Resolved on the wire: IPv4 by ARP, IPv6 by neighbour solicitation
	 * (which needs the node's IPv6 address as source; without one, IPv6
	 * next hops need static entries).
	 */
#define RESOLVABLE(a)                                                                              \
	((a)->family == ADDR_V4 || ((a)->family == ADDR_V6 && cfg->node_v6.family == ADDR_V6))
	if (RESOLVABLE(&cfg->gateway))
		want[n++] = cfg->gateway;
	for (uint32_t i = 0; i < nsvc; i++) {
		if (sm != NULL) {
			const struct sm_service *s = sm_service_at(sm, i);
			for (uint32_t j = 0; j < s->n_backends; j++)
				if (RESOLVABLE(&s->backends[j].addr))
					want[n++] = s->backends[j].addr;
			continue;
		}
		for (uint32_t j = 0; j < cfg->services[i].n_backends; j++)
			if (RESOLVABLE(&cfg->services[i].backends[j].addr))
				want[n++] = cfg->services[i].backends[j].addr;
	}
#undef RESOLVABLE
	rc = neigh_set_wanted(app->neigh, want, n, now);
	free(want);
	if (rc != 0)
		log_warn("neighbour table: %s (capacity %d)", strerror(-rc), NEIGH_CAPACITY);
	return 0;
}

/* Resolve a wanted address: an ARP request (IPv4) or a neighbour solicitation (IPv6). */
static void send_arp_request(void *ctx, const struct addr *a)
{
	struct app *app = ctx;
	uint8_t frame[NEIGH_NS_FRAME_LEN > NEIGH_ARP_FRAME_LEN ? NEIGH_NS_FRAME_LEN
							     : NEIGH_ARP_FRAME_LEN];
	char b[ADDR_STRLEN];
	int len = a->family == ADDR_V6
			  ? neigh_ns_request(frame, sizeof(frame), app->port_mac, &app->cfg.node_v6, a)
			  : neigh_arp_request(frame, sizeof(frame), app->port_mac, &app->cfg.node_v4, a);

	if (len < 0)
		return;
	int rc = dpdk_control_send(app->dp, frame, (uint32_t)len);
	log_debug("%s %s: %s", a->family == ADDR_V6 ? "neighbour solicitation for" : "ARP who-has",
		  addr_format(a, b, sizeof(b)), rc == 0 ? "sent" : strerror(-rc));
}

/* neigh_mld_tick's report callback: one MLDv2 report out of the port. */
static void send_mld_report(void *ctx, enum neigh_mld_record type, const struct addr *groups,
			    uint32_t k)
{
	struct app *app = ctx;
	uint8_t frame[NEIGH_MLD_FRAME_LEN(NEIGH_MLD_MAX_RECORDS)];
	int len = neigh_mld_report(frame, sizeof(frame), app->port_mac, &app->link_local, type,
				   groups, k);

	if (len < 0)
		return;
	int rc = dpdk_control_send(app->dp, frame, (uint32_t)len);
	log_debug("MLDv2 report, %u %s record(s): %s", k,
		  type == NEIGH_MLD_TO_EX   ? "join (TO_EX)"
		  : type == NEIGH_MLD_TO_IN ? "leave (TO_IN)"
					    : "current (IS_EX)",
		  rc == 0 ? "sent" : strerror(-rc));
}

/*
 * The groups to listen to, from the state the workers use now: the
 * solicited-node groups (RFC 4291 2.7.1) of the node's IPv6 address, of
 * every announced IPv6 VIP and of the link-local address the reports come
 * from. A switch that snoops MLD forwards solicitations for them to this
 * port only if we report them. The link-local address is the node's own
 * when address6 is one, else derived from the port MAC (modified EUI-64):
 * RFC 3810 5.2.13 allows :: only while the node has no link-local address
 * yet (DAD), and fulcrumd never gets one otherwise. An IPv4-only node sends
 * nothing, and neither does a net_pcap port: a capture file has no switch to
 * listen, and the golden tests compare its output frame for frame with the
 * control thread silent (as build_params keeps SNAT ports in order there).
 * Cheap when nothing was published: one pointer and one compare.
 */
static void mld_sync(struct app *app, uint64_t now)
{
	const struct fwd_state *st = dpdk_state(app->dp);

	if (app->mld == NULL || st == NULL || st->gen == app->mld_gen || port_is_replay(&app->cfg.dp))
		return;
	struct addr *a = malloc(((size_t)st->n_services + 2) * sizeof(*a));
	if (a == NULL)
		return; /* tried again next tick */
	uint32_t n = 0;
	for (uint32_t i = 0; i < st->n_services; i++)
		if (st->services[i].vip.family == ADDR_V6 && st->services[i].announce)
			a[n++] = st->services[i].vip;
	if (st->node_v6.family == ADDR_V6)
		a[n++] = st->node_v6;
	if (n > 0) {
		if (neigh_is_link_local(&st->node_v6)) {
			app->link_local = st->node_v6;
		} else {
			neigh_link_local(&app->link_local, app->port_mac);
			a[n++] = app->link_local;
		}
	}
	app->mld_active = n > 0;
	int rc = neigh_mld_set(app->mld, a, n, now);
	free(a);
	if (rc < 0)
		return;
	app->mld_gen = st->gen;
	if (rc == 1) {
		char b[ADDR_STRLEN];
		log_info("MLD: listening on %u solicited-node group(s), reports from %s to "
			 "ff02::16",
			 neigh_mld_count(app->mld),
			 app->mld_active ? addr_format(&app->link_local, b, sizeof(b)) : "-");
	}
}

/*
 * A solicitation for the node's link-local address (the workers answer the
 * configured address and the VIPs, and hand the rest over): answered here,
 * so that the source of our MLD reports is a real neighbour. Rare: queriers
 * and switches do not need to resolve it.
 */
static void answer_link_local(struct app *app, const uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t na[NEIGH_NA_FRAME_LEN];
	struct addr target;

	if (!app->mld_active || addr_eq(&app->link_local, &app->cfg.node_v6))
		return;
	neigh_nd_target(frame, pi, &target);
	if (!addr_eq(&target, &app->link_local))
		return;
	int len = neigh_na_reply(na, sizeof(na), app->port_mac, frame, pi);
	if (len > 0)
		(void)dpdk_control_send(app->dp, na, (uint32_t)len);
}

/* A packet fwd handed to the control thread (FWD_CONTROL). */
static void control_packet(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct app *app = ctx;
	struct pkt_info pi;
	struct addr who;
	uint8_t mac[6];
	unsigned learn = 0;

	if (pkt_parse(frame, len, &pi) != 0) {
		app->control_other++;
		return;
	}
	if (pi.l3 == PKT_L3_ARP) {
		/* RFC 826 merge: add the sender only if the packet was meant for us. */
		if (pi.arp_op == PKT_ARP_REPLY && addr_eq(&pi.dst, &app->cfg.node_v4))
			learn = NEIGH_LEARN_CREATE;
		who = pi.src;
		memcpy(mac, pi.arp_sha, 6);
	} else {
		/*
		 * IPv6 neighbour discovery, the same merge rule: an advertisement
		 * answering our solicitation (S set, to one of our addresses) may
		 * create an entry and is the only confirmation of reachability
		 * (RFC 4861 7.3.1); anything else (an unsolicited advertisement,
		 * a solicitation) is a hint that may correct a MAC without
		 * extending the entry's life (neigh.h), and an advertisement
		 * without Override (a proxy's, an anycast answer) does not even
		 * correct one (RFC 4861 7.2.5).
		 */
		unsigned nd = 0;
		int prc = neigh_nd_parse(frame, &pi, &who, mac, &nd);
		if (prc >= 0 && pi.icmp_type == 135)
			answer_link_local(app, frame, &pi);
		if (prc != 1) {
			app->control_other++;
			return;
		}
		int to_us = addr_eq(&pi.dst, &app->cfg.node_v6) ||
			    (app->mld_active && addr_eq(&pi.dst, &app->link_local));
		if (pi.icmp_type == 136 && (nd & NEIGH_ND_SOLICITED) && to_us)
			learn |= NEIGH_LEARN_CREATE;
		else
			learn |= NEIGH_LEARN_UNCONFIRMED;
		if (!(nd & NEIGH_ND_OVERRIDE))
			learn |= NEIGH_LEARN_KEEP;
	}
	int rc = neigh_learn(app->neigh, &who, mac, mono_ns(), learn);
	if (rc == 1) {
		char b[ADDR_STRLEN];
		app->arp_learned++;
		log_info("neighbour %s is at %02x:%02x:%02x:%02x:%02x:%02x",
			 addr_format(&who, b, sizeof(b)), mac[0], mac[1], mac[2], mac[3], mac[4],
			 mac[5]);
		app->need_rebuild = 1;
	}
}

/* ---- State ---- */

static int key_eq(const struct addr *va, uint16_t pa, uint8_t ra, const struct addr *vb,
		  uint16_t pb, uint8_t rb)
{
	return addr_eq(va, vb) && pa == pb && ra == rb;
}

static void counter_add(struct fwd_counter *to, const struct fwd_counter *c)
{
	to->pkts += c->pkts;
	to->bytes += c->bytes;
	to->new_flows += c->new_flows;
	to->reply_pkts += c->reply_pkts;
	to->reply_bytes += c->reply_bytes;
}

static uint32_t carry_be_hash(const struct addr *vip, uint16_t port, uint8_t proto, uint32_t uid)
{
	return (uint32_t)hash_bytes(vip, sizeof(*vip),
				    (uint64_t)uid << 24 | (uint64_t)port << 8 | proto);
}

static void carry_index_put(struct app *app, size_t i)
{
	const struct carry_be *c = &app->cbe[i];
	size_t k = carry_be_hash(&c->vip, c->port, c->proto, c->uid) & app->cbe_mask;

	while (app->cbe_idx[k] != 0)
		k = (k + 1) & app->cbe_mask;
	app->cbe_idx[k] = (uint32_t)i + 1;
}

/* (Re)build the index with room for twice the entries: lookups stay O(1). */
static int carry_be_reindex(struct app *app, size_t want)
{
	size_t size = 64;

	while (size < 2 * want)
		size <<= 1;
	uint32_t *idx = calloc(size, sizeof(*idx));
	if (idx == NULL)
		return -ENOMEM;
	free(app->cbe_idx);
	app->cbe_idx = idx;
	app->cbe_mask = size - 1;
	for (size_t i = 0; i < app->n_cbe; i++)
		carry_index_put(app, i);
	return 0;
}

/*
 * The carried totals of service s (uid 0) or of one of its backends (its uid),
 * found by identity: a state can hold tens of thousands of backends, and
 * every rebuild looks each of them up.
 */
static struct carry_be *carry_find(struct app *app, const struct fwd_service *s, uint32_t uid,
				   int add)
{
	if (app->cbe_idx != NULL) {
		size_t k = carry_be_hash(&s->vip, s->port, s->proto, uid) & app->cbe_mask;
		for (; app->cbe_idx[k] != 0; k = (k + 1) & app->cbe_mask) {
			struct carry_be *c = &app->cbe[app->cbe_idx[k] - 1];
			if (c->uid == uid &&
			    key_eq(&c->vip, c->port, c->proto, &s->vip, s->port, s->proto))
				return c;
		}
	}
	if (!add)
		return NULL;
	if ((app->n_cbe + 1) * 2 > app->cbe_mask + 1 &&
	    carry_be_reindex(app, app->n_cbe + 1) != 0)
		return NULL;
	struct carry_be *n = realloc(app->cbe, (app->n_cbe + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	app->cbe = n;
	memset(&n[app->n_cbe], 0, sizeof(*n));
	n[app->n_cbe].vip = s->vip;
	n[app->n_cbe].port = s->port;
	n[app->n_cbe].proto = s->proto;
	n[app->n_cbe].uid = uid;
	carry_index_put(app, app->n_cbe);
	return &n[app->n_cbe++];
}

static int counter_zero(const struct fwd_counter *c)
{
	return (c->pkts | c->bytes | c->new_flows | c->reply_pkts | c->reply_bytes) == 0;
}

/*
 * dpdk_publish's retire hook: the old state's counters are final; keep their
 * totals. Only counters that moved are carried: a missing entry means zero
 * (print_stats), and a state with 20k idle backends then costs 20k sums, not
 * 20k hash lookups and inserts per publish.
 */
static void retire_state(void *ctx, const struct fwd_state *old)
{
	struct app *app = ctx;

	for (uint32_t i = 0; i < old->n_services; i++) {
		const struct fwd_service *s = &old->services[i];
		struct fwd_counter c;
		fwd_counter_sum(old, s->counter, &c);
		if (!counter_zero(&c)) {
			struct carry_be *cs = carry_find(app, s, 0, 1);
			if (cs != NULL)
				counter_add(&cs->c, &c);
		}
		for (uint32_t j = 0; j < s->n_backends; j++) {
			fwd_counter_sum(old, s->backends[j].counter, &c);
			if (counter_zero(&c))
				continue;
			struct carry_be *cb = carry_find(app, s, s->backends[j].uid, 1);
			if (cb != NULL)
				counter_add(&cb->c, &c);
		}
	}
}

static uint8_t zero_mac[6];

/*
 * config -> spec -> state -> dpdk_publish: every change of forwarding state
 * goes this way, in three steps. build_prepare takes the inputs (control
 * thread), build_run builds (any one thread at a time), build_finish
 * publishes (control thread).
 */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int build_prepare(struct app *app, const char *why, int sync_neigh, struct build_job *j)
{
	uint64_t t0 = thread_cpu_ns();
	int rc;

	memset(j, 0, sizeof(*j));
	j->why = why;
	/* A new revision may bring new backends to resolve (the ARP wanted set). */
	if (sync_neigh)
		neigh_sync_config(app, mono_ns());
	if (app->cfg.gateway.family != ADDR_NONE)
		neigh_lookup(app->neigh, &app->cfg.gateway, j->gw_mac);
	if (app->cluster != NULL) {
		/*
		 * The replicated state at its revision, once the cluster is seeded
		 * (before that: no services, so no half-seeded table with seed 0
		 * ever forwards). Node-specific inputs come from this node's file.
		 */
		struct sm_node_params np;
		memset(&np, 0, sizeof(np));
		memcpy(np.port_mac, app->port_mac, 6);
		memcpy(np.gateway_mac, j->gw_mac, 6);
		np.node_v4 = app->cfg.node_v4;
		np.node_v6 = app->cfg.node_v6;
		np.neigh = neigh_cb;
		np.neigh_ctx = app;
		np.n_workers = dpdk_workers(app->dp);
		np.skipped = &j->skipped;
		const struct sm_state *sm =
		    cluster_seeded(app->cluster) ? cluster_state(app->cluster) : app->empty_sm;
		j->from_sm = 1;
		j->n_services = sm_service_count(sm);
		rc = sm_to_spec(sm, &np, &j->spec);
		if (rc == 0)
			j->spec.revision = sm_revision(cluster_state(app->cluster));
	} else {
		j->n_services = app->cfg.n_services;
		rc = config_to_spec(&app->cfg, app->revision + 1, app->port_mac, j->gw_mac,
				    neigh_cb, app, dpdk_workers(app->dp), &j->spec);
	}
	if (rc != 0) {
		log_error("building the forwarding spec: %s", strerror(-rc));
		return rc;
	}
	for (uint32_t i = 0; i < j->spec.n_services; i++)
		for (uint32_t k = 0; k < j->spec.services[i].n_backends; k++) {
			j->total++;
			j->resolved += j->spec.services[i].backends[k].mac_ok != 0;
		}
	/* The inputs are taken: a neighbour change from now on needs another build. */
	j->had_need = app->need_rebuild;
	app->need_rebuild = 0;
	j->prev = dpdk_state(app->dp);
	j->prep_ns = thread_cpu_ns() - t0;
	return 0;
}

static void build_run(struct build_job *j, int cluster)
{
	uint64_t t0 = thread_cpu_ns();

	j->st = fwd_state_build_from(&j->spec, j->prev, j->err, sizeof(j->err));
	/* O(services): each table's digest was taken with the table (fwd_table_digest). */
	if (j->st != NULL && cluster)
		j->digest = cluster_fwd_digest(j->st);
	j->cpu_ns = thread_cpu_ns() - t0;
}

static int build_finish(struct app *app, struct build_job *j)
{
	uint64_t spec_revision = j->spec.revision;
	int rc;

	app->last_build_cpu_ns = j->cpu_ns;
	if (j->from_sm)
		sm_spec_free(&j->spec);
	else
		config_spec_free(&j->spec);
	if (j->st == NULL) {
		log_error("forwarding state rejected: %s", j->err);
		if (app->cluster != NULL) /* keep forwarding on the last state; do not retry it */
			app->revision = spec_revision;
		app->need_rebuild |= j->had_need;
		return -EINVAL;
	}
	uint64_t t0 = thread_cpu_ns();
	uint32_t reused = j->st->tables_reused, built = j->st->n_services - reused;
	rc = dpdk_publish(app->dp, j->st, retire_state, app);
	if (rc != 0) {
		fwd_state_free(j->st);
		j->st = NULL;
		log_error("publish: %s", strerror(-rc));
		app->need_rebuild |= j->had_need;
		return rc;
	}
	j->st = NULL;
	app->revision = app->cluster != NULL ? spec_revision : app->revision + 1;
	if (app->cluster != NULL) {
		cluster_set_forwarding(app->cluster, app->revision, j->digest);
		log_debug("forwarding digest %016" PRIx64 " at revision %" PRIu64, j->digest,
			  app->revision);
	}
	if (j->skipped != app->last_skipped && j->skipped > 0)
		log_warn("revision %" PRIu64 ": %u service(s) left out on this node: nat needs a node "
			 "address (address/address6) of the VIP's family, tunnel an IPv4 one",
			 spec_revision, j->skipped);
	app->last_skipped = j->skipped;
	log_info("published revision %" PRIu64 " (%s): %u services, %u/%u backends resolved, "
		 "gateway %s; Maglev tables built %u, reused %u; CPU ms: inputs %.1f, build %.1f, "
		 "publish %.1f",
		 app->revision, j->why, j->n_services, j->resolved, j->total,
		 app->cfg.gateway.family == ADDR_NONE  ? "none"
		 : memcmp(j->gw_mac, zero_mac, 6) != 0 ? "resolved"
						       : "unresolved",
		 built, reused, (double)j->prep_ns / 1e6, (double)j->cpu_ns / 1e6,
		 (double)(thread_cpu_ns() - t0) / 1e6);
	return 0;
}

/* ---- The builder thread (cluster mode) ---- */

static void *builder_main(void *arg)
{
	struct app *app = arg;
	struct builder *b = &app->bld;
	const uint64_t one = 1;

	/* Only this thread: the control thread keeps its priority (BUILDER_NICE). */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BUILDER_NICE);
	(void)pthread_setname_np(pthread_self(), "fwd-builder"); /* top -H, perf */
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->have_job && !b->quit)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->quit)
			break;
		b->have_job = 0;
		pthread_mutex_unlock(&b->mu);
		build_run(&b->job, 1);
		pthread_mutex_lock(&b->mu);
		b->done = 1;
		pthread_cond_broadcast(&b->cv);
		if (write(b->efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
			/* eventfd counter overflow cannot happen with one job in flight */
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* Publish the finished job, if any (control thread). wait: block until it is finished. */
static void builder_collect(struct app *app, int wait)
{
	struct builder *b = &app->bld;
	uint64_t v;

	if (!b->submitted)
		return;
	pthread_mutex_lock(&b->mu);
	while (wait && !b->done)
		pthread_cond_wait(&b->cv, &b->mu);
	int done = b->done;
	b->done = 0;
	pthread_mutex_unlock(&b->mu);
	if (!done)
		return;
	if (read(b->efd, &v, sizeof(v)) < 0) {
		/* nothing pending (already read): fine */
	}
	b->submitted = 0;
	build_finish(app, &b->job);
}

static void on_built(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	builder_collect(ctx, 0);
}

/* Hand a build to the thread; the caller checked that it is idle. */
static int rebuild_async(struct app *app, const char *why, int sync_neigh)
{
	struct builder *b = &app->bld;
	int rc = build_prepare(app, why, sync_neigh, &b->job);

	if (rc != 0)
		return rc;
	b->submitted = 1;
	pthread_mutex_lock(&b->mu);
	b->have_job = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static int builder_start(struct app *app)
{
	struct builder *b = &app->bld;

	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0)
		return -errno;
	b->ev = event_new(app->base, b->efd, EV_READ | EV_PERSIST, on_built, app);
	if (b->ev == NULL || event_add(b->ev, NULL) != 0)
		return -ENOMEM;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	int rc = pthread_create(&b->thread, NULL, builder_main, app);
	if (rc != 0) {
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		return -rc;
	}
	b->started = 1;
	return 0;
}

/* Finish what is in flight (published: it is a valid state), then stop the thread. */
static void builder_stop(struct app *app)
{
	struct builder *b = &app->bld;

	if (b->started) {
		builder_collect(app, 1);
		pthread_mutex_lock(&b->mu);
		b->quit = 1;
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->thread, NULL);
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		b->started = 0;
	}
	if (b->ev != NULL)
		event_free(b->ev);
	b->ev = NULL;
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
}

/* A build on the calling (control) thread, after the one in flight, if any. */
static int rebuild(struct app *app, const char *why)
{
	struct build_job j;
	int rc;

	builder_collect(app, 1);
	rc = build_prepare(app, why, 0, &j);
	if (rc != 0)
		return rc;
	build_run(&j, app->cluster != NULL);
	return build_finish(app, &j);
}

/* ---- Counters (SIGUSR1) ---- */

static const char *proto_name(uint8_t p)
{
	return p == 6 ? "tcp" : p == 17 ? "udp" : "?";
}

static const char *mode_name(uint8_t m)
{
	return m == FWD_MODE_NAT ? "nat" : m == FWD_MODE_DSR ? "dsr" : m == FWD_MODE_TUNNEL ? "tunnel" : "?";
}

static void print_neigh(void *ctx, const struct neigh_entry_info *e)
{
	uint64_t now = *(const uint64_t *)ctx;
	char b[ADDR_STRLEN];
	static const char *names[] = {"incomplete", "reachable", "static"};

	fprintf(stderr, "  neighbour %-15s %02x:%02x:%02x:%02x:%02x:%02x %-10s%s age %" PRIu64
			"s requests %u\n",
		addr_format(&e->addr, b, sizeof(b)), e->mac[0], e->mac[1], e->mac[2], e->mac[3],
		e->mac[4], e->mac[5], names[e->state % 3], e->wanted ? " wanted" : "",
		(uint64_t)(e->state == NEIGH_REACHABLE ? (now - e->confirmed) / 1000000000u : 0),
		e->requests);
}

/* The name of service i of the published state (same order as its source: file or state). */
static const char *service_name(struct app *app, const struct fwd_state *st, uint32_t i)
{
	if (app->cluster != NULL) {
		const struct sm_state *sm = cluster_state(app->cluster);
		const struct sm_service *s = sm_service_count(sm) == st->n_services
						 ? sm_service_at(sm, i)
						 : NULL;
		return s != NULL ? s->def.name : "?";
	}
	return i < app->cfg.n_services ? app->cfg.services[i].name : "?";
}

static void print_stats(struct app *app)
{
	const struct fwd_state *st = dpdk_state(app->dp);
	char b[ADDR_STRLEN], b2[ADDR_STRLEN];

	fprintf(stderr, "== fulcrumd counters, revision %" PRIu64 " (totals since start)\n",
		app->revision);
	for (uint32_t i = 0; st != NULL && i < st->n_services; i++) {
		const struct fwd_service *s = &st->services[i];
		struct fwd_counter c;
		fwd_counter_sum(st, s->counter, &c);
		struct carry_be *cs = carry_find(app, s, 0, 0);
		if (cs != NULL)
			counter_add(&c, &cs->c);
		fprintf(stderr,
			"service %s %s:%u/%s %s: pkts %" PRIu64 " bytes %" PRIu64 " new_flows %" PRIu64
			" reply_pkts %" PRIu64 " reply_bytes %" PRIu64 "\n",
			service_name(app, st, i),
			addr_format(&s->vip, b, sizeof(b)), s->port, proto_name(s->proto),
			mode_name(s->mode), c.pkts, c.bytes, c.new_flows, c.reply_pkts, c.reply_bytes);
		for (uint32_t j = 0; j < s->n_backends; j++) {
			const struct fwd_backend *be = &s->backends[j];
			fwd_counter_sum(st, be->counter, &c);
			struct carry_be *cb = carry_find(app, s, be->uid, 0);
			if (cb != NULL)
				counter_add(&c, &cb->c);
			fprintf(stderr,
				"  backend %s:%u weight %u %s: pkts %" PRIu64 " bytes %" PRIu64
				" new_flows %" PRIu64 " reply_pkts %" PRIu64 "\n",
				addr_format(&be->addr, b2, sizeof(b2)), be->port, be->weight,
				be->mac_ok ? "resolved" : "UNRESOLVED", c.pkts, c.bytes, c.new_flows,
				c.reply_pkts);
		}
	}
	for (unsigned w = 0; w < dpdk_workers(app->dp); w++) {
		struct dpdk_worker_stats ws;
		if (dpdk_worker_stats(app->dp, w, &ws) != 0)
			continue;
		fprintf(stderr,
			"worker %u: rx %" PRIu64 " tx %" PRIu64 " replies %" PRIu64 " to_control %" PRIu64
			" control_full %" PRIu64 " tx_unsent %" PRIu64 " multiseg %" PRIu64
			" flows %" PRIu64 " expired %" PRIu64 " sleeps %" PRIu64 " handoff %" PRIu64
			" handoff_full %" PRIu64 " handoff_in %" PRIu64 "\n",
			w, ws.rx, ws.tx, ws.replies, ws.to_control, ws.control_full, ws.tx_unsent,
			ws.multiseg, ws.flows, ws.expired, ws.sleeps, ws.handoff, ws.handoff_full,
			ws.handoff_in);
		fprintf(stderr, "  drops:");
		int any = 0;
		for (unsigned r = 0; r < FWD_DROP__COUNT; r++)
			if (ws.drops[r] != 0) {
				fprintf(stderr, " %s=%" PRIu64, fwd_drop_str(r), ws.drops[r]);
				any = 1;
			}
		fprintf(stderr, "%s\n", any ? "" : " none");
	}
	struct dpdk_port_stats ps;
	if (dpdk_port_stats(app->dp, &ps) == 0)
		fprintf(stderr,
			"port: ipackets %" PRIu64 " opackets %" PRIu64 " ibytes %" PRIu64
			" obytes %" PRIu64 " imissed %" PRIu64 " ierrors %" PRIu64 " oerrors %" PRIu64
			" rx_nombuf %" PRIu64 " control_sent %" PRIu64 " control_dropped %" PRIu64 "\n",
			ps.ipackets, ps.opackets, ps.ibytes, ps.obytes, ps.imissed, ps.ierrors,
			ps.oerrors, ps.rx_nombuf, ps.control_sent, ps.control_dropped);
	fprintf(stderr, "control: arp_learned %" PRIu64 " other %" PRIu64 " neighbours %u\n",
		app->arp_learned, app->control_other, neigh_count(app->neigh));
	uint64_t now = mono_ns();
	neigh_foreach(app->neigh, print_neigh, &now);
}

/* ---- Reload (SIGHUP) ---- */

/* What only a restart can change: the port, the EAL, the workers and their tables. */
static const char *restart_only_change(const struct fulcrum_config *a, const struct fulcrum_config *b)
{
	const struct cfg_dataplane *x = &a->dp, *y = &b->dp;

	if (!addr_eq(&a->node_v4, &b->node_v4) || !addr_eq(&a->node_v6, &b->node_v6))
		return "node address";
	if (strcmp(x->port_devargs, y->port_devargs) != 0 || strcmp(x->lcores, y->lcores) != 0 ||
	    x->workers != y->workers || x->rx_desc != y->rx_desc || x->tx_desc != y->tx_desc ||
	    x->mbufs != y->mbufs || x->burst != y->burst || x->flow_capacity != y->flow_capacity ||
	    x->snat_port_lo != y->snat_port_lo || x->snat_port_hi != y->snat_port_hi ||
	    x->memory_mb != y->memory_mb || x->idle != y->idle || x->idle_polls != y->idle_polls ||
	    x->idle_sleep_us != y->idle_sleep_us || x->tx_flush_us != y->tx_flush_us ||
	    memcmp(&x->timeouts, &y->timeouts, sizeof(x->timeouts)) != 0)
		return "dataplane settings";
	return NULL;
}

static void reload(struct app *app)
{
	struct fulcrum_config next;
	char err[1024];

	log_info("SIGHUP: reloading %s", app->cfg.path);
	if (config_load(app->cfg.path, &next, err, sizeof(err)) != 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	const char *what = restart_only_change(&app->cfg, &next);
	if (what == NULL && app->cfg.cluster.enabled != next.cluster.enabled)
		what = "the cluster section";
	if (what == NULL && app->cluster != NULL) {
		const struct cfg_cluster *x = &app->cfg.cluster, *y = &next.cluster;
		if (x->id != y->id || x->cluster_id != y->cluster_id ||
		    strcmp(x->data_dir, y->data_dir) != 0 ||
		    strcmp(x->raft_listen, y->raft_listen) != 0 ||
		    strcmp(x->api_listen, y->api_listen) != 0 || x->tick_ms != y->tick_ms ||
		    x->heartbeat_ms != y->heartbeat_ms || x->election_min_ms != y->election_min_ms)
			what = "cluster settings";
		else
			log_info("reload: cluster mode takes log level, gateway and neighbours from "
				 "the file; services come from the replicated state (peers and "
				 "tokens need a restart)");
	}
	if (what != NULL) {
		log_error("reload refused: %s changed, which needs a restart; keeping the running "
			  "configuration", what);
		config_free(&next);
		return;
	}
	struct fulcrum_config old = app->cfg;
	app->cfg = next;
	log_set_level((int)app->cfg.log_level);
	neigh_sync_config(app, mono_ns());
	if (rebuild(app, "reload") != 0) {
		/* The new services did not build: go back to the old ones. */
		app->cfg = old;
		neigh_sync_config(app, mono_ns());
		config_free(&next);
		log_error("reload failed, keeping the running configuration");
		return;
	}
	config_free(&old);
}

/* ---- Event loop callbacks ---- */

static void on_signal(evutil_socket_t fd, short what, void *ctx)
{
	struct app *app = ctx;
	struct signalfd_siginfo si;

	(void)what;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGINT:
		case SIGTERM:
			log_info("%s: stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			event_base_loopbreak(app->base);
			return;
		case SIGHUP:
			reload(app);
			break;
		case SIGUSR1:
			print_stats(app);
			break;
		default:
			break;
		}
	}
}

static void on_tick(evutil_socket_t fd, short what, void *ctx)
{
	struct app *app = ctx;
	(void)fd;
	(void)what;

	dpdk_control_poll(app->dp, CONTROL_POLL_MAX, control_packet, app);
	uint64_t now = mono_ns();
	/*
	 * The neighbour table is scanned whole; every 5 ms tick that cost a
	 * fifth of a core with thousands of backends. ARP retries and aging are
	 * in hundreds of ms and seconds, so 50 ms is plenty.
	 */
	int lost = 0, lost6 = 0;
	mld_sync(app, now);
	if (now - app->last_neigh_tick >= NEIGH_TICK_NS) {
		app->last_neigh_tick = now;
		lost = neigh_tick(app->neigh, now, send_arp_request, app, &lost6);
		if (app->mld != NULL)
			neigh_mld_tick(app->mld, now, send_mld_report, app);
	}
	if (lost > lost6)
		log_warn("%d IPv4 neighbour(s) stopped answering ARP; their packets are dropped "
			 "until they answer",
			 lost - lost6);
	if (lost6 > 0)
		log_warn("%d IPv6 neighbour(s) stopped answering neighbour discovery; their "
			 "packets are dropped until they answer",
			 lost6);
	if (lost > 0)
		app->need_rebuild = 1;
	if (app->cluster != NULL) {
		cluster_tick(app->cluster);
		if (app->cluster_failed) {
			event_base_loopbreak(app->base);
			return;
		}
		/*
		 * Coalesced: one forwarding state at the latest applied revision,
		 * built on the builder thread; the next one starts once it is
		 * published, REBUILD_MIN_NS after the previous start and within
		 * the CPU budget (BUILD_CPU_DIV).
		 */
		uint64_t rev = sm_revision(cluster_state(app->cluster));
		uint64_t gap = BUILD_CPU_DIV * app->last_build_cpu_ns;
		if (gap < REBUILD_MIN_NS)
			gap = REBUILD_MIN_NS;
		if (cluster_seeded(app->cluster) && rev != app->revision) {
			if (app->api != NULL)
				api_notify(app->api);
			if (!app->bld.submitted && now - app->last_applied_rebuild >= gap) {
				app->last_applied_rebuild = now;
				rebuild_async(app, "applied", 1);
			}
		}
		if (app->status_file != NULL && now - app->last_status >= STATUS_EVERY_NS) {
			app->last_status = now;
			int src = cluster_write_status(app->cluster, app->status_file);
			if (src != 0)
				log_warn("status file %s: %s", app->status_file, strerror(-src));
		}
	}
	if (app->need_rebuild) {
		if (app->cluster == NULL)
			rebuild(app, "neighbours changed");
		else if (!app->bld
			      .submitted) /* else: the next tick, once the build in flight is out */
			rebuild_async(app, "neighbours changed", 0);
	}

	if (now - app->last_link_check >= 1000000000ull) {
		struct dpdk_link l;
		app->last_link_check = now;
		if (dpdk_link_get(app->dp, &l) == 0 &&
		    (!app->link_known || l.up != app->link.up || l.speed_mbps != app->link.speed_mbps)) {
			if (l.up)
				log_info("link up, %u Mbps %s", l.speed_mbps,
					 l.full_duplex ? "full duplex" : "half duplex");
			else
				log_warn("link down");
			app->link = l;
			app->link_known = 1;
		}
	}
	if (app->stats_interval_s != 0 &&
	    now - app->last_stats >= (uint64_t)app->stats_interval_s * 1000000000ull) {
		app->last_stats = now;
		print_stats(app);
	}
}

/* ---- Cluster hooks ---- */

/* The HTTP/JSON API over this node (controlplane/api.h copies what it keeps). */
static int start_api(struct app *app)
{
	const struct cfg_cluster *cl = &app->cfg.cluster;
	struct api_token tokens[2 * CFG_MAX_TOKENS];
	const char *svc[CFG_MAX_TOKENS][CFG_MAX_TOKEN_SERVICES];
	struct api_peer peers[CFG_MAX_PEERS];
	struct api_config ac;
	struct api_backend be;
	size_t nt = 0, np = 0;

	memset(tokens, 0, sizeof(tokens));
	for (unsigned i = 0; i < cl->n_admin_tokens; i++) {
		tokens[nt].token = cl->admin_tokens[i];
		tokens[nt++].admin = 1;
	}
	for (uint32_t i = 0; i < cl->n_reg_tokens && i < CFG_MAX_TOKENS; i++) {
		const struct cfg_reg_token *r = &cl->reg_tokens[i];
		for (unsigned k = 0; k < r->n_services; k++)
			svc[i][k] = r->services[k];
		tokens[nt].token = r->token;
		tokens[nt].services = svc[i];
		tokens[nt++].n_services = r->n_services;
	}
	for (uint32_t i = 0; i < cl->n_peers; i++) {
		if (config_peer_is_self(&app->cfg, i))
			continue;
		peers[np].id = cl->peers[i].id;
		peers[np++].api_addr = cl->peers[i].api;
	}
	memset(&ac, 0, sizeof(ac));
	ac.listen = cl->api_listen;
	ac.tokens = tokens;
	ac.n_tokens = nt;
	ac.peers = peers;
	ac.n_peers = np;
	cluster_api_backend(app->cluster, &be);
	return api_start(app->base, &ac, &be, &app->api);
}

static void on_cluster_role(void *ctx)
{
	struct app *app = ctx;

	if (app->api != NULL)
		api_notify(app->api);
}

static void on_cluster_stopped(void *ctx, const char *msg)
{
	struct app *app = ctx;

	log_error("cluster node stopped (%s): fulcrumd exits", msg);
	app->cluster_failed = 1;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"stats-interval", required_argument, NULL, 's'},
		{"status-file", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	int check_only = 0, c;
	static struct app app; /* large; zeroed */
	char err[1024];

	app.bld.efd = -1;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check_only = 1;
			break;
		case 's': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end != '\0' || v > 86400) {
				fprintf(stderr, "fulcrumd: --stats-interval: 0..86400 seconds\n");
				return 2;
			}
			app.stats_interval_s = (uint32_t)v;
			break;
		}
		case 'S':
			app.status_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}

	/* 1. The whole configuration, before anything is touched. */
	if (config_load(path, &app.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fulcrumd: %s\n", err);
		config_free(&app.cfg);
		return 1;
	}
	if (check_only) {
		if (app.cfg.cluster.enabled)
			printf("%s: ok (cluster node %" PRIu64 ", %u seed services)\n", path,
			       app.cfg.cluster.id, app.cfg.n_services);
		else
			printf("%s: ok (%u services)\n", path, app.cfg.n_services);
		config_free(&app.cfg);
		return 0;
	}
	log_set_level((int)app.cfg.log_level);

	/*
	 * 2. Signals: blocked in every thread (EAL's threads inherit this mask)
	 * and read from a signalfd by the control loop, so no work happens in a
	 * signal handler.
	 */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "fulcrumd: signalfd: %s\n", strerror(errno));
		config_free(&app.cfg);
		return 1;
	}

	/* 3. EAL and the port. */
	struct eal_argv ea;
	build_eal_args(&app.cfg, &ea);
	if (log_threshold >= LOG_LVL_DEBUG)
		for (int i = 0; i < ea.argc; i++)
			log_debug("EAL argv[%d] = %s", i, ea.argv[i]);
	int rc = dpdk_eal_init(ea.argc, ea.argv, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		close(sfd);
		config_free(&app.cfg);
		return 1;
	}
	app.exit_code = 1;
	struct dpdk_params params;
	build_params(&app.cfg, &params);
	rc = dpdk_open(&params, &app.dp, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		goto out_eal;
	}
	dpdk_port_mac(app.dp, app.port_mac);
	log_info("port %s up as %02x:%02x:%02x:%02x:%02x:%02x, %u worker(s), idle %s",
		 app.cfg.dp.port_devargs, app.port_mac[0], app.port_mac[1], app.port_mac[2],
		 app.port_mac[3], app.port_mac[4], app.port_mac[5], dpdk_workers(app.dp),
		 params.idle == DPDK_IDLE_ADAPTIVE ? "adaptive" : "busy");

	/* 4. Neighbours and the first state, then the workers. */
	app.neigh = neigh_create(NEIGH_CAPACITY,
				 (uint64_t)(app.cfg.dp.arp_timeout_s ? app.cfg.dp.arp_timeout_s : 60) *
					 1000000000ull,
				 (uint64_t)(app.cfg.dp.arp_retry_ms ? app.cfg.dp.arp_retry_ms : 1000) *
					 1000000ull);
	app.mld = neigh_mld_create(MLD_INTERVAL_NS, MLD_REFRESH_NS, MLD_ROBUSTNESS);
	/*
	 * The epoll changelist: evhttp disables and re-enables a connection's
	 * read and write events around every request, which cost four
	 * epoll_ctl calls per API request; with the changelist, changes that
	 * cancel out within one loop turn never reach the kernel. Its one
	 * caveat (dup()'d descriptors sharing an epoll registration) does not
	 * apply: nothing here dups a descriptor the loop watches.
	 */
	struct event_config *ecfg = event_config_new();
	if (ecfg != NULL) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		app.base = event_base_new_with_config(ecfg);
		event_config_free(ecfg);
	}
	if (app.base == NULL)
		app.base = event_base_new();
	if (app.base == NULL) {
		log_error("event loop setup failed");
		goto out_dp;
	}
	if (app.cfg.cluster.enabled) {
		/* The node restores the replicated state (snapshot inside cluster_start, the log
		 * in the first loop turns); until it is seeded the dataplane has no services. */
		struct cluster_hooks hooks = {
		    .ctx = &app, .stopped = on_cluster_stopped, .role = on_cluster_role};
		app.empty_sm = sm_new();
		rc = app.empty_sm == NULL ? -ENOMEM
					  : cluster_start(app.base, &app.cfg, &hooks, &app.cluster,
							  err, sizeof(err));
		if (rc != 0) {
			log_error("cluster node %" PRIu64 ": %s", app.cfg.cluster.id, err);
			goto out_dp;
		}
		log_info("cluster node %" PRIu64 ": raft on %s, data in %s%s", app.cfg.cluster.id,
			 app.cfg.cluster.raft_listen, app.cfg.cluster.data_dir,
			 app.cfg.cluster.bootstrap ? " (bootstrap member)" : "");
		rc = start_api(&app);
		if (rc != 0) {
			log_error("API on %s: %s", app.cfg.cluster.api_listen, strerror(-rc));
			goto out_dp;
		}
		log_info("API on %s (%s)", app.cfg.cluster.api_listen,
			 app.cfg.cluster.n_admin_tokens + app.cfg.cluster.n_reg_tokens > 0
			     ? "bearer tokens required"
			     : "open: no tokens configured");
	}
	if (app.neigh == NULL || app.mld == NULL || neigh_sync_config(&app, mono_ns()) != 0) {
		log_error("out of memory for the neighbour table");
		goto out_dp;
	}
	if (rebuild(&app, "start") != 0)
		goto out_dp;
	if (app.cluster != NULL && (rc = builder_start(&app)) != 0) {
		log_error("forwarding-state builder thread: %s", strerror(-rc));
		goto out_dp;
	}
	if (dpdk_start(app.dp) != 0) {
		log_error("cannot launch the workers");
		goto out_dp;
	}

	/* 5. The control loop. */
	struct event *ev_sig = app.base ? event_new(app.base, sfd, EV_READ | EV_PERSIST, on_signal, &app) : NULL;
	struct event *ev_tick = app.base ? event_new(app.base, -1, EV_PERSIST, on_tick, &app) : NULL;
	struct timeval tick = {.tv_sec = 0, .tv_usec = TICK_MS * 1000};
	if (ev_sig == NULL || ev_tick == NULL || event_add(ev_sig, NULL) != 0 ||
	    event_add(ev_tick, &tick) != 0) {
		log_error("event loop setup failed");
	} else {
		log_info("fulcrumd running (pid %d): %u %sservices; SIGHUP reloads, SIGUSR1 prints "
			 "counters",
			 (int)getpid(), app.cfg.n_services, app.cluster != NULL ? "seed " : "");
		if (event_base_dispatch(app.base) == 0 || event_base_got_break(app.base))
			app.exit_code = 0;
	}
	if (app.cluster_failed)
		app.exit_code = 1;
	if (ev_tick != NULL)
		event_free(ev_tick);
	if (ev_sig != NULL)
		event_free(ev_sig);

out_dp:
	/* The build in flight is published (or freed) before the dataplane goes. */
	builder_stop(&app);
	/* The API first (it detaches pending requests), then the node (final sync), while the
	 * base still exists. */
	api_free(app.api);
	app.api = NULL;
	cluster_stop(app.cluster);
	cluster_free(app.cluster);
	app.cluster = NULL;
	sm_free(app.empty_sm);
	/*
	 * Bufferevents freed with deferred callbacks pending (a peer dial in
	 * flight at shutdown) finish freeing from the loop: let it run them
	 * once before the base goes, or they leak.
	 */
	for (int i = 0; app.base != NULL && i < 4; i++)
		event_base_loop(app.base, EVLOOP_NONBLOCK);
	if (app.base != NULL)
		event_base_free(app.base);
	/* 6. Clean stop: workers joined, port stopped and closed, memory freed. */
	dpdk_close(app.dp);
	neigh_destroy(app.neigh);
	neigh_mld_destroy(app.mld);
out_eal:
	dpdk_eal_cleanup();
	close(sfd);
	config_free(&app.cfg);
	free(app.cbe);
	free(app.cbe_idx);
	log_info("stopped (exit %d)", app.exit_code);
	return app.exit_code;
}
