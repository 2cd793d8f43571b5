/* config: fulcrumd's configuration file (libconfig) — load, validate, turn into forwarding state. */
#ifndef FULCRUM_CONTROLPLANE_CONFIG_H
#define FULCRUM_CONTROLPLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataplane/addr.h"
#include "dataplane/flow.h"
#include "dataplane/fwd.h"

/*
 * The whole file is read and validated before anything is started; an error
 * message (one line) names the file, the line and the setting, e.g.
 *   conf/x.conf:42: services.[1].backends.[0].weight: 2000000 is out of range
 *   (expected an integer in 0..1000000)
 * Every setting is one row of a table in config.c, from which parsing,
 * validation, defaults, config_dump and config_dump_reference (the
 * reference in docs/config.md) all come. Loaded configs are plain values
 * owned by the caller (config_free). Any single thread; no global state.
 */

#define CFG_NAME_MAX 64
#define CFG_DEVARGS_MAX 256
#define CFG_MAX_EAL_ARGS 32
#define CFG_MAX_SERVICES 1024
#define CFG_MAX_BACKENDS 4096 /* per service */
#define CFG_MAX_NEIGHBOURS 1024
#define CFG_MAX_WORKERS 127 /* DPDK's RTE_MAX_LCORE (128) minus the control lcore */
#define CFG_HOSTPORT_MAX 64   /* "ip:port" / "[ipv6]:port" incl. NUL */
#define CFG_DIR_MAX 1024      /* cluster.data_dir incl. NUL */
#define CFG_TOKEN_MAX 128     /* a bearer token incl. NUL */
#define CFG_TOKEN_MIN 16      /* shortest token accepted (guessing must be hopeless) */
#define CFG_MAX_PEERS 16      /* = RAFT_MAX_MEMBERS */
#define CFG_MAX_TOKENS 32     /* admin tokens; also registration tokens */
#define CFG_MAX_TOKEN_SERVICES 32

enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARN = 1,
	CFG_LOG_INFO = 2,
	CFG_LOG_DEBUG = 3,
};

enum cfg_idle {
	CFG_IDLE_BUSY = 0,     /* busy poll: production, one core per worker */
	CFG_IDLE_ADAPTIVE = 1, /* sleep after idle_polls empty polls: shared machines, CI */
};

struct cfg_backend {
	struct addr addr;
	uint16_t port;   /* never 0 after loading: the service port when the file omits it */
	uint32_t weight; /* 0 = draining */
	uint32_t uid;    /* config_backend_uid(addr, port): stable across reloads and nodes */
};

struct cfg_service {
	char name[CFG_NAME_MAX];
	struct addr vip;
	uint16_t port;
	uint8_t proto;      /* IPPROTO_TCP / IPPROTO_UDP */
	uint8_t mode;       /* enum fwd_mode */
	bool announce;      /* answer ARP for the VIP */
	uint32_t table_size; /* Maglev M (prime) */
	uint32_t n_backends;
	struct cfg_backend *backends;
	int line; /* where it was defined, for later messages */
};

/* A static neighbour (ARP) entry: an address whose MAC is not resolved on the wire. */
struct cfg_neighbour {
	struct addr addr;
	uint8_t mac[6];
};

struct cfg_dataplane {
	/* EAL */
	char lcores[CFG_NAME_MAX];      /* EAL --lcores/-l value, e.g. "0@(0-1),1@(0-1)" */
	char file_prefix[CFG_NAME_MAX]; /* --file-prefix; "" = none */
	uint32_t memory_mb;             /* -m */
	bool no_huge;                   /* --no-huge */
	bool in_memory;                 /* --in-memory */
	unsigned n_eal_args;            /* extra EAL arguments, verbatim */
	char eal_args[CFG_MAX_EAL_ARGS][CFG_DEVARGS_MAX];
	/* the port (one for now) */
	char port_devargs[CFG_DEVARGS_MAX]; /* a vdev ("net_af_packet0,iface=veth0") or a PCI address */
	uint16_t rx_desc;
	uint16_t tx_desc;
	uint16_t mtu;
	/* workers and memory */
	unsigned workers;       /* one RX queue each (RSS when the port supports it) */
	uint32_t mbufs;         /* mempool size (computed when the file says 0 or nothing) */
	uint32_t mbuf_cache;
	uint16_t burst;         /* RX burst, <= FWD_BURST_MAX */
	uint32_t tx_flush_us;   /* buffered TX flushed at least this often */
	enum cfg_idle idle;
	uint32_t idle_polls;    /* empty polls before sleeping (adaptive) */
	uint32_t idle_sleep_us; /* sleep per idle round (adaptive) */
	/* flows */
	uint32_t flow_capacity; /* per worker */
	struct flow_timeouts timeouts;
	uint16_t snat_port_lo; /* split evenly between workers */
	uint16_t snat_port_hi;
	/* neighbours */
	uint32_t arp_timeout_s; /* learned entries age out after this */
	uint32_t arp_retry_ms;  /* ARP request interval for an unresolved next hop */
};

/* Another member of the cluster (cluster.peers). */
struct cfg_peer {
	uint64_t id;			/* Raft node id, != 0 */
	char raft[CFG_HOSTPORT_MAX];	/* its Raft address */
	char api[CFG_HOSTPORT_MAX];	/* its API address (forwarding to the leader) */
};

/* A registration token and the services it may register backends in. */
struct cfg_reg_token {
	char token[CFG_TOKEN_MAX];
	unsigned n_services;
	char services[CFG_MAX_TOKEN_SERVICES][CFG_NAME_MAX];
};

/*
 * The cluster section (docs/cluster.md). Absent (enabled = false): fulcrumd is
 * a single node whose services come from the file, exactly as before. Present:
 * the services come from the replicated state; the file's services only seed a
 * brand-new cluster.
 */
struct cfg_cluster {
	bool enabled;		    /* the file has a cluster group */
	uint64_t id;		    /* this node's Raft id, != 0 */
	uint64_t cluster_id;	    /* the same on every member; peers of another cluster are refused */
	char data_dir[CFG_DIR_MAX]; /* Raft log and snapshots */
	char raft_listen[CFG_HOSTPORT_MAX];
	char api_listen[CFG_HOSTPORT_MAX];
	bool bootstrap;		    /* an initial member of a new cluster (ignored once the log exists) */
	uint32_t tick_ms;
	uint32_t heartbeat_ms;
	uint32_t election_min_ms;   /* election timeouts are drawn from [min, 2 * min) */
	uint64_t snapshot_every;
	uint32_t n_peers;	    /* entries of peers[]; one may be this node (skipped, see self_peer) */
	struct cfg_peer *peers;
	unsigned n_admin_tokens;
	char admin_tokens[CFG_MAX_TOKENS][CFG_TOKEN_MAX];
	uint32_t n_reg_tokens;
	struct cfg_reg_token *reg_tokens;
};

struct fulcrum_config {
	char path[4096];
	char node_name[CFG_NAME_MAX];
	enum cfg_log_level log_level;
	uint64_t hash_seed;   /* cluster-wide; the same on every node */
	struct addr node_v4;  /* the node's data address (ARP/ICMP, SNAT, tunnel source) */
	struct addr node_v6;
	struct addr gateway;  /* next hop for replies to clients (nat); NONE = reply to the sender's MAC */
	struct cfg_dataplane dp;
	uint32_t n_services;
	struct cfg_service *services;
	uint32_t n_neighbours;
	struct cfg_neighbour *neighbours;
	struct cfg_cluster cluster;
};

/*
 * Load and validate path into *cfg (zeroed first; defaults for what the file
 * omits). Returns 0, or a negative errno with the message in err
 * ("FILE:LINE: SETTING: problem (expected ...)"; "FILE: SETTING: ..." when the
 * setting is missing from the top level, which has no line):
 *   -EINVAL  the file is not valid (syntax, unknown setting, type, range, a
 *            cross-check);
 *   -ENOENT, -EACCES, -EFBIG, -EIO ...  the file cannot be read (EFBIG: over 16 MiB);
 *   -ENOMEM  out of memory.
 * Unknown settings are errors (a typo must not be ignored). @include is
 * refused (one self-contained file per node). On error *cfg holds nothing
 * to free (it is zeroed). Any single thread.
 */
int config_load(const char *path, struct fulcrum_config *cfg, char *err, size_t errlen);

/* The same from text in memory; name stands for the file name in messages (and cfg->path). */
int config_load_string(const char *text, const char *name, struct fulcrum_config *cfg, char *err,
		       size_t errlen);

/*
 * Whether a name (service, node) uses only [A-Za-z0-9._-]: it becomes a URL
 * path segment and a metric label, so nothing ever needs escaping. Length is
 * the caller's to check. Any thread.
 */
int config_name_ok(const char *name);

/*
 * Whether peer i of cfg->cluster is this node itself (same id). config_load
 * accepts such an entry only when its addresses equal raft_listen and
 * api_listen, so one peer list can be pasted into every node's file; the
 * daemon skips it. Pure; any thread.
 */
bool config_peer_is_self(const struct fulcrum_config *cfg, uint32_t i);

/* Free what config_load allocated; *cfg is zeroed. NULL or zeroed is fine. */
void config_free(struct fulcrum_config *cfg);

/*
 * The identity of a backend as a 32-bit uid: a seeded hash_bytes() of the
 * same 19 bytes Maglev hashes (family, 16 address bytes, port big-endian),
 * with a fixed seed, so it is the same on every node and across reloads and
 * does not depend on the cluster hash seed. Never 0. Two identities of one
 * service with the same uid are rejected by config_load. Pure; any thread.
 */
uint32_t config_backend_uid(const struct addr *a, uint16_t port);

/*
 * A neigh callback for config_to_spec over the static neighbours of the
 * config (ctx = const struct fulcrum_config *): returns 1 and fills mac when
 * cfg lists a, else 0. Pure read; any thread. fulcrumd's real callback
 * consults its neighbour table (where the static entries are also added).
 */
int config_neigh_static(void *ctx, const struct addr *a, uint8_t mac[6]);

/*
 * Write cfg as a complete config file (every setting, defaults included) in
 * libconfig syntax: what fulcrumd actually runs with. Loading the output
 * gives a config equal to cfg. Returns 0, or -EIO if writing failed.
 */
int config_dump(const struct fulcrum_config *cfg, FILE *f);

/*
 * Write the settings reference (Markdown tables: setting, type and bounds,
 * default, meaning) generated from the settings table. docs/config.md
 * carries this output verbatim (a unit test keeps them in step).
 * Returns 0 or -EIO.
 */
int config_dump_reference(FILE *f);

/*
 * Fill a forwarding-state spec from cfg: services and backends with their
 * uids, node addresses, hash seed, revision. Backend MACs are looked up with
 * neigh(ctx, addr, mac) (returns 1 and fills mac when resolved, else 0) so the
 * caller decides where neighbours come from (static entries, ARP); this
 * function does not consult cfg->neighbours itself (config_neigh_static
 * does, if the caller wants only those). neigh NULL = nothing resolved.
 * port_mac is the port's MAC; gateway_mac the resolved gateway (zero if
 * unknown); either may be NULL (zero). n_workers 0 = cfg->dp.workers.
 * Allocates the arrays the spec points to (one block): release with
 * config_spec_free. *spec is zeroed first. Returns 0 or -ENOMEM (nothing
 * to free then). Control thread (any single thread).
 */
int config_to_spec(const struct fulcrum_config *cfg, uint64_t revision, const uint8_t port_mac[6],
		   const uint8_t gateway_mac[6],
		   int (*neigh)(void *ctx, const struct addr *a, uint8_t mac[6]), void *ctx,
		   unsigned n_workers, struct fwd_spec *spec);
/* Free what config_to_spec allocated and zero *spec. NULL or zeroed is fine. */
void config_spec_free(struct fwd_spec *spec);

#endif
