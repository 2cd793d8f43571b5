/* config: fulcrumd's configuration file (libconfig) — load, validate, turn into forwarding state. */
#ifndef FULCRUM_CONTROLPLANE_CONFIG_H
#define FULCRUM_CONTROLPLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/addr.h"
#include "dataplane/flow.h"
#include "dataplane/fwd.h"

/*
 * The whole file is read and validated before anything is started; an error
 * message names the file, the line and the setting, e.g.
 *   conf/x.conf:42: services.[1].backends.[0].weight: must be 0..1000000
 * Loaded configs are plain values owned by the caller (config_free). Any
 * single thread; no global state.
 */

#define CFG_NAME_MAX 64
#define CFG_DEVARGS_MAX 256
#define CFG_MAX_EAL_ARGS 32
#define CFG_MAX_SERVICES 1024
#define CFG_MAX_BACKENDS 4096 /* per service */
#define CFG_MAX_NEIGHBOURS 1024

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
	uint16_t port;   /* 0 = the service port */
	uint32_t weight; /* 0 = draining */
	uint32_t uid;    /* derived from (addr, port): stable across reloads and nodes */
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
	uint32_t mbufs;         /* mempool size */
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
};

/*
 * Load and validate path into *cfg (zeroed first; defaults for what the file
 * omits). Returns 0, or -1 with the message in err ("FILE:LINE: SETTING:
 * problem"). Unknown settings are errors (a typo must not be ignored). On
 * error *cfg holds nothing to free.
 */
int config_load(const char *path, struct fulcrum_config *cfg, char *err, size_t errlen);

/* The same from text in memory; name stands for the file name in messages. */
int config_load_string(const char *text, const char *name, struct fulcrum_config *cfg, char *err,
		       size_t errlen);

/* Free what config_load allocated; *cfg is zeroed. NULL or zeroed is fine. */
void config_free(struct fulcrum_config *cfg);

/*
 * Fill a forwarding-state spec from cfg: services and backends with their
 * uids, node addresses, hash seed, revision. Backend MACs are looked up with
 * neigh(ctx, addr, mac) (returns 1 and fills mac when resolved, else 0) so the
 * caller decides where neighbours come from (static entries, ARP). port_mac is
 * the port's MAC; gateway_mac the resolved gateway (zero if unknown).
 * Allocates the arrays the spec points to: release with config_spec_free.
 * Returns 0 or -ENOMEM.
 */
int config_to_spec(const struct fulcrum_config *cfg, uint64_t revision, const uint8_t port_mac[6],
		   const uint8_t gateway_mac[6],
		   int (*neigh)(void *ctx, const struct addr *a, uint8_t mac[6]), void *ctx,
		   unsigned n_workers, struct fwd_spec *spec);
void config_spec_free(struct fwd_spec *spec);

#endif
