/* config: fulcrumd's configuration file (libconfig): load, validate, turn into forwarding state. */
#include "controlplane/config.h"

#include <errno.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/hash.h"
#include "dataplane/maglev.h"

/*
 * The settings table, in the manner of redis's config.c: every setting is one
 * row (struct opt) saying where it lives, its type, bounds, default and help.
 * One generic walker parses, validates and applies defaults from it; the same
 * rows drive config_dump (the effective config) and config_dump_reference
 * (docs/config.md). Checks that involve more than one setting live in the
 * per-group check hooks below the table.
 */

enum opt_type {
	OT_STR,	    /* char[size]; min = shortest length */
	OT_NAME,    /* char[size] of [A-Za-z0-9._-]; OF_EMPTY_OK allows "" */
	OT_UINT,    /* unsigned integer of `size` bytes in min..max */
	OT_BOOL,    /* bool */
	OT_ENUM,    /* one of `names`, stored as an integer of `size` bytes */
	OT_ADDR,    /* struct addr; OF_V4 / OF_V6 say which families, OF_EMPTY_OK allows "" */
	OT_MAC,	    /* uint8_t[6], unicast */
	OT_SECONDS, /* number of seconds in (0, max] in the file; uint64_t ns in memory */
	OT_SEED,    /* uint64_t: an integer, or a string of hex ("0x...") or decimal digits */
	OT_STRLIST, /* char[max][size] plus an unsigned count at off2 */
	OT_RANGE,   /* [lo, hi] into two uint16_t at off and off2, each in min..max */
	OT_GROUP,   /* a group described by sub; its rows' offsets are relative to base + off */
	OT_LIST,    /* a list of groups: pointer at off, uint32_t count at off2, items of sub */
	OT_HOSTPORT, /* char[size]: "IPv4:port" or "[IPv6]:port", numeric, port 1..65535 */
};

enum opt_flag {
	OF_V4 = 1 << 0,
	OF_V6 = 1 << 1,
	OF_EMPTY_OK = 1 << 2,
	OF_PRESENCE = 1 << 3, /* OT_GROUP: optional as a whole; bool at off2 says it is present.
				 Absent: nothing parsed (no defaults, no required settings) and
				 nothing dumped */
};

struct opt_name {
	const char *name;
	int value;
};

struct ctx;
struct schema;

struct opt {
	const char *name;
	enum opt_type type;
	unsigned flags;
	size_t off;
	size_t size;
	long long min, max;
	const char *def; /* the default, in file syntax; NULL = required */
	const char *help;
	const struct opt_name *names; /* OT_ENUM; ends with a NULL name */
	const struct schema *sub;     /* OT_GROUP, OT_LIST */
	size_t off2;		      /* OT_RANGE, OT_STRLIST, OT_LIST */
};

/* A group's rows, and what to check once all of them are parsed. */
struct schema {
	const char *what; /* heading in the reference */
	const char *help;
	const struct opt *opts;
	size_t n_opts;
	size_t item_size; /* items of an OT_LIST */
	uint32_t max_items;
	int (*check)(struct ctx *c, const config_setting_t *g, int line, const char *path,
		     uint8_t *base);
};

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
#define FC(m)	 offsetof(struct fulcrum_config, m), sizeof(((struct fulcrum_config *)0)->m)
#define SV(m)	 offsetof(struct cfg_service, m), sizeof(((struct cfg_service *)0)->m)
#define BE(m)	 offsetof(struct cfg_backend, m), sizeof(((struct cfg_backend *)0)->m)
#define NB(m)	 offsetof(struct cfg_neighbour, m), sizeof(((struct cfg_neighbour *)0)->m)
#define PR(m)	 offsetof(struct cfg_peer, m), sizeof(((struct cfg_peer *)0)->m)
#define RT(m)	 offsetof(struct cfg_reg_token, m), sizeof(((struct cfg_reg_token *)0)->m)

/* Longest timeout: a week. Longer idle flows are better served by keepalives. */
#define CFG_TIMEOUT_MAX 604800
#define CFG_PATH_MAX	256
#define CFG_FILE_MAX	(16u << 20)
#define CFG_UID_SEED	0x666c6372756d6964ULL /* fixed forever: uids must not change */
#define NS_PER_S	1000000000ULL

static const struct opt_name log_names[] = {
    {"error", CFG_LOG_ERROR},
    {"warn", CFG_LOG_WARN},
    {"info", CFG_LOG_INFO},
    {"debug", CFG_LOG_DEBUG},
    {NULL, 0},
};
static const struct opt_name idle_names[] = {
    {"busy", CFG_IDLE_BUSY},
    {"adaptive", CFG_IDLE_ADAPTIVE},
    {NULL, 0},
};
static const struct opt_name mode_names[] = {
    {"nat", FWD_MODE_NAT},
    {"dsr", FWD_MODE_DSR},
    {"tunnel", FWD_MODE_TUNNEL},
    {NULL, 0},
};
static const struct opt_name proto_names[] = {
    {"tcp", IPPROTO_TCP},
    {"udp", IPPROTO_UDP},
    {NULL, 0},
};

static int check_root(struct ctx *c, const config_setting_t *g, int line, const char *path,
		      uint8_t *base);
static int check_service(struct ctx *c, const config_setting_t *g, int line, const char *path,
			 uint8_t *base);
static int check_neighbour(struct ctx *c, const config_setting_t *g, int line, const char *path,
			   uint8_t *base);
static int check_cluster(struct ctx *c, const config_setting_t *g, int line, const char *path,
			 uint8_t *base);

static const struct opt node_opts[] = {
    {"name", OT_NAME, 0, FC(node_name), 1, CFG_NAME_MAX - 1, "\"fulcrum\"",
     "This node's name, for logs (letters, digits, '.', '_', '-').", NULL, NULL, 0},
    {"address", OT_ADDR, OF_V4 | OF_EMPTY_OK, FC(node_v4), 0, 0, "\"\"",
     "The node's IPv4 data address, owned by fulcrumd alone (the kernel must not hold it): "
     "answers ARP and ICMP echo, SNAT source of nat services, outer source of tunnel "
     "services. \"\" = none (then no IPv4 nat or tunnel service).",
     NULL, NULL, 0},
    {"address6", OT_ADDR, OF_V6 | OF_EMPTY_OK, FC(node_v6), 0, 0, "\"\"",
     "The node's IPv6 data address (as address, for IPv6 nat services). \"\" = none.", NULL, NULL,
     0},
    {"gateway", OT_ADDR, OF_V4 | OF_V6 | OF_EMPTY_OK, FC(gateway), 0, 0, "\"\"",
     "Next hop for nat replies to clients (its MAC is resolved by ARP). \"\" = reply to the "
     "MAC the client's packets came from.",
     NULL, NULL, 0},
    {"hash_seed", OT_SEED, 0, FC(hash_seed), 0, 0, "\"0x46756c6372756d31\"",
     "Cluster-wide Maglev/flow hash seed: must be the same on every node, or a flow moved by "
     "ECMP lands on another backend. Change it from the default so that outsiders cannot "
     "predict which 5-tuples share a backend.",
     NULL, NULL, 0},
    {"log_level", OT_ENUM, 0, FC(log_level), 0, 0, "\"info\"", "Least severe level logged.",
     log_names, NULL, 0},
};

static const struct opt port_opts[] = {
    {"devargs", OT_STR, 0, FC(dp.port_devargs), 1, 0, NULL,
     "The port: a DPDK vdev (\"net_af_packet0,iface=veth0\", \"net_af_xdp0,iface=...\", "
     "\"net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap\", ...) or a PCI address of a NIC bound to "
     "vfio-pci.",
     NULL, NULL, 0},
    {"rx_desc", OT_UINT, 0, FC(dp.rx_desc), 32, 16384, "1024", "RX descriptors per queue.", NULL,
     NULL, 0},
    {"tx_desc", OT_UINT, 0, FC(dp.tx_desc), 32, 16384, "1024", "TX descriptors per queue.", NULL,
     NULL, 0},
    {"mtu", OT_UINT, 0, FC(dp.mtu), 68, 9600, "1500", "Port MTU (IP packet size).", NULL, NULL, 0},
};

static const struct opt flows_opts[] = {
    {"capacity", OT_UINT, 0, FC(dp.flow_capacity), 1, FLOW_CAPACITY_MAX, "262144",
     "Flow-table entries per worker, allocated at start (160 bytes each: 262144 = 40 MB). "
     "Established flows are never evicted, so size it for the concurrent connections of "
     "one worker.",
     NULL, NULL, 0},
    {"tcp_syn_timeout", OT_SECONDS, 0, FC(dp.timeouts.tcp_syn), 0, CFG_TIMEOUT_MAX, "5",
     "Idle timeout of a TCP flow before it is established.", NULL, NULL, 0},
    {"tcp_established_timeout", OT_SECONDS, 0, FC(dp.timeouts.tcp_est), 0, CFG_TIMEOUT_MAX, "900",
     "Idle timeout of an established TCP flow.", NULL, NULL, 0},
    {"tcp_fin_timeout", OT_SECONDS, 0, FC(dp.timeouts.tcp_fin), 0, CFG_TIMEOUT_MAX, "30",
     "Idle timeout after a FIN.", NULL, NULL, 0},
    {"tcp_closed_timeout", OT_SECONDS, 0, FC(dp.timeouts.tcp_closed), 0, CFG_TIMEOUT_MAX, "10",
     "Idle timeout after a RST.", NULL, NULL, 0},
    {"udp_timeout", OT_SECONDS, 0, FC(dp.timeouts.udp), 0, CFG_TIMEOUT_MAX, "60",
     "Idle timeout of a UDP flow.", NULL, NULL, 0},
    {"other_timeout", OT_SECONDS, 0, FC(dp.timeouts.other), 0, CFG_TIMEOUT_MAX, "30",
     "Idle timeout of other protocols.", NULL, NULL, 0},
};

static const struct schema port_schema = {
    "dataplane.port", "The DPDK port (one for now).", port_opts, NOPTS(port_opts), 0, 0, NULL};
static const struct schema flows_schema = {
    "dataplane.flows",
    "Per-worker flow tables. Timeouts are idle times in seconds (fractions allowed).",
    flows_opts,
    NOPTS(flows_opts),
    0,
    0,
    NULL};

static const struct opt dataplane_opts[] = {
    {"lcores", OT_STR, 0, FC(dp.lcores), 0, 0, "\"\"",
     "EAL --lcores value: the control lcore first, then one per worker, e.g. \"0,1\" (pinned) or "
     "\"0@(0-1),1@(0-1)\" (floating, for labs and CI). Must name at least workers + 1 lcores. "
     "\"\" = fulcrumd passes -l 0-W (lcores 0 to workers, pinned).",
     NULL, NULL, 0},
    {"file_prefix", OT_NAME, OF_EMPTY_OK, FC(dp.file_prefix), 0, CFG_NAME_MAX - 1, "\"\"",
     "EAL --file-prefix, needed to run several DPDK processes on one machine. \"\" = not "
     "passed.",
     NULL, NULL, 0},
    {"memory_mb", OT_UINT, 0, FC(dp.memory_mb), 0, 1048576, "0",
     "EAL -m (MB of memory to reserve). 0 = not passed.", NULL, NULL, 0},
    {"no_huge", OT_BOOL, 0, FC(dp.no_huge), 0, 0, "false",
     "EAL --no-huge: run without hugepages (labs, CI; slower).", NULL, NULL, 0},
    {"in_memory", OT_BOOL, 0, FC(dp.in_memory), 0, 0, "false",
     "EAL --in-memory: no shared runtime files.", NULL, NULL, 0},
    {"eal_args", OT_STRLIST, 0, offsetof(struct fulcrum_config, dp.eal_args),
     sizeof(((struct fulcrum_config *)0)->dp.eal_args[0]), 0, CFG_MAX_EAL_ARGS, "[]",
     "Further EAL arguments, passed verbatim after the ones above (e.g. \"--no-pci\", "
     "\"--log-level=lib.eal:debug\").",
     NULL, NULL, offsetof(struct fulcrum_config, dp.n_eal_args)},
    {"port", OT_GROUP, 0, 0, 0, 0, 0, NULL, "The port; devargs is required.", NULL, &port_schema,
     0},
    {"workers", OT_UINT, 0, FC(dp.workers), 1, CFG_MAX_WORKERS, "1",
     "Forwarding workers: one lcore and one RX queue each (RSS spreads flows when the port "
     "supports it).",
     NULL, NULL, 0},
    {"mbufs", OT_UINT, 0, FC(dp.mbufs), 0, 1u << 26, "0",
     "Mempool size. 0 = computed: workers * (rx_desc + tx_desc + 2 * burst) + (workers + 1) * "
     "mbuf_cache, plus workers * (rx_desc + burst) for the nat reply handoff rings when "
     "workers > 1, + 1024, rounded up to 2^n - 1. A value given must be at least that sum "
     "without the 1024.",
     NULL, NULL, 0},
    {"mbuf_cache", OT_UINT, 0, FC(dp.mbuf_cache), 0, 512, "256",
     "Per-lcore mempool cache (mbufs objects kept per lcore, off the shared ring).", NULL, NULL, 0},
    {"burst", OT_UINT, 0, FC(dp.burst), 1, FWD_BURST_MAX, "32", "Packets per RX burst.", NULL, NULL,
     0},
    {"tx_flush_us", OT_UINT, 0, FC(dp.tx_flush_us), 1, 1000000, "100",
     "Buffered TX is flushed at least this often (microseconds).", NULL, NULL, 0},
    {"idle", OT_ENUM, 0, FC(dp.idle), 0, 0, "\"busy\"",
     "Worker idle policy: \"busy\" polls without pause (production, one core per worker); "
     "\"adaptive\" sleeps after idle_polls empty polls (shared machines, CI).",
     idle_names, NULL, 0},
    {"idle_polls", OT_UINT, 0, FC(dp.idle_polls), 1, 1000000000, "300",
     "adaptive: empty polls in a row before sleeping.", NULL, NULL, 0},
    {"idle_sleep_us", OT_UINT, 0, FC(dp.idle_sleep_us), 1, 1000000, "20",
     "adaptive: sleep per idle round (microseconds).", NULL, NULL, 0},
    {"flows", OT_GROUP, 0, 0, 0, 0, 0, NULL, "Flow-table size and idle timeouts.", NULL,
     &flows_schema, 0},
    {"snat_ports", OT_RANGE, 0, FC(dp.snat_port_lo), 1, 65535, "[1024, 65535]",
     "[lo, hi]: source ports of nat flows on the node address, split evenly between the "
     "workers (so at least `workers` ports). A worker holds at most its share of nat flows "
     "at once.",
     NULL, NULL, offsetof(struct fulcrum_config, dp.snat_port_hi)},
    {"arp_timeout", OT_UINT, 0, FC(dp.arp_timeout_s), 1, 86400, "300",
     "Learned neighbour entries expire after this many seconds without confirmation.", NULL, NULL,
     0},
    {"arp_retry_ms", OT_UINT, 0, FC(dp.arp_retry_ms), 10, 60000, "1000",
     "ARP request interval for an unresolved next hop (milliseconds).", NULL, NULL, 0},
};

static const struct opt backend_opts[] = {
    {"address", OT_ADDR, OF_V4 | OF_V6, BE(addr), 0, 0, NULL,
     "Backend address: the VIP's family (nat, dsr) or IPv4 (tunnel).", NULL, NULL, 0},
    {"port", OT_UINT, 0, BE(port), 0, 65535, "0",
     "Backend port. 0 = the service port; dsr and tunnel cannot change ports, so there it must "
     "be 0 or the service port.",
     NULL, NULL, 0},
    {"weight", OT_UINT, 0, BE(weight), 0, 1000000, "1",
     "Relative share of new flows. 0 = draining: keeps its flows, gets no new ones.", NULL, NULL,
     0},
};

static const struct schema backend_schema = {
    "services.[].backends.[]",
    "The backends of a service, a list of groups. A backend's identity is (address, port); "
    "its uid is derived from it.",
    backend_opts,
    NOPTS(backend_opts),
    sizeof(struct cfg_backend),
    CFG_MAX_BACKENDS,
    NULL};

static const struct opt service_opts[] = {
    {"name", OT_NAME, 0, SV(name), 1, CFG_NAME_MAX - 1, NULL,
     "Unique service name (letters, digits, '.', '_', '-'), used in logs and counters.", NULL, NULL,
     0},
    {"vip", OT_ADDR, OF_V4 | OF_V6, SV(vip), 0, 0, NULL, "Virtual IP address (v4 or v6).", NULL,
     NULL, 0},
    {"port", OT_UINT, 0, SV(port), 1, 65535, NULL, "Service port.", NULL, NULL, 0},
    {"proto", OT_ENUM, 0, SV(proto), 0, 0, "\"tcp\"", "Transport protocol.", proto_names, NULL, 0},
    {"mode", OT_ENUM, 0, SV(mode), 0, 0, "\"nat\"",
     "\"nat\": DNAT to the backend and SNAT to the node address, replies come back through this "
     "node; \"dsr\": only the destination MAC changes, backends hold the VIP on loopback and "
     "reply directly (same L2 segment); \"tunnel\": IP-in-IPv4 to the backend.",
     mode_names, NULL, 0},
    {"announce", OT_BOOL, 0, SV(announce), 0, 0, "false",
     "Answer ARP for the VIP on the port's L2 segment (flat labs; with a router in front, "
     "route the VIP to the node instead).",
     NULL, NULL, 0},
    {"table_size", OT_UINT, 0, SV(table_size), MAGLEV_MIN_SIZE, MAGLEV_MAX_SIZE, "65537",
     "Maglev lookup table size M: prime, at least the number of backends with weight > 0; "
     "Maglev wants M > 100 * backends for even shares.",
     NULL, NULL, 0},
    {"backends", OT_LIST, 0, offsetof(struct cfg_service, backends), 0, 0, 0, NULL,
     "The backends (none: packets to the service are dropped and counted).", NULL, &backend_schema,
     offsetof(struct cfg_service, n_backends)},
};

static const struct schema service_schema = {
    "services.[]",
    "The services, a list of groups. A service is identified by (vip, port, proto).",
    service_opts,
    NOPTS(service_opts),
    sizeof(struct cfg_service),
    CFG_MAX_SERVICES,
    check_service};

static const struct opt neighbour_opts[] = {
    {"address", OT_ADDR, OF_V4 | OF_V6, NB(addr), 0, 0, NULL, "Neighbour address.", NULL, NULL, 0},
    {"mac", OT_MAC, 0, NB(mac), 0, 0, NULL, "Its MAC address (unicast).", NULL, NULL, 0},
};

static const struct schema neighbour_schema = {
    "neighbours.[]",
    "Static neighbour (ARP) entries, a list of groups: never aged, never overwritten by ARP.",
    neighbour_opts,
    NOPTS(neighbour_opts),
    sizeof(struct cfg_neighbour),
    CFG_MAX_NEIGHBOURS,
    check_neighbour};

static const struct opt peer_opts[] = {
    {"id", OT_UINT, 0, PR(id), 1, 2147483647, NULL, "The member's Raft node id.", NULL, NULL, 0},
    {"raft", OT_HOSTPORT, 0, PR(raft), 0, 0, NULL,
     "Its Raft address (its cluster.raft_listen, as reachable from here).", NULL, NULL, 0},
    {"api", OT_HOSTPORT, 0, PR(api), 0, 0, NULL,
     "Its API address (its cluster.api_listen, as reachable from here): writes received by a "
     "follower are forwarded to the leader there.",
     NULL, NULL, 0},
};

static const struct schema peer_schema = {
    "cluster.peers.[]",
    "The members, a list of groups. An entry with this node's id is allowed (so that one list "
    "fits every node's file) when its addresses are raft_listen and api_listen; it is skipped.",
    peer_opts,
    NOPTS(peer_opts),
    sizeof(struct cfg_peer),
    CFG_MAX_PEERS,
    NULL};

static const struct opt regtoken_opts[] = {
    {"token", OT_STR, 0, RT(token), CFG_TOKEN_MIN, 0, NULL,
     "The bearer token (letters, digits and -._~+/=, as RFC 6750 allows).", NULL, NULL, 0},
    {"services", OT_STRLIST, 0, offsetof(struct cfg_reg_token, services),
     sizeof(((struct cfg_reg_token *)0)->services[0]), 0, CFG_MAX_TOKEN_SERVICES, NULL,
     "Names of the services whose backends this token may register, keep alive and deregister "
     "(at least one; they need not exist yet).",
     NULL, NULL, offsetof(struct cfg_reg_token, n_services)},
};

static const struct schema regtoken_schema = {
    "cluster.registration_tokens.[]",
    "Registration tokens, a list of groups: what a backend presents to register itself.",
    regtoken_opts,
    NOPTS(regtoken_opts),
    sizeof(struct cfg_reg_token),
    CFG_MAX_TOKENS,
    NULL};

static const struct opt cluster_opts[] = {
    {"id", OT_UINT, 0, FC(cluster.id), 1, 2147483647, NULL,
     "This node's Raft id, unique in the cluster and never reused.", NULL, NULL, 0},
    {"cluster_id", OT_SEED, 0, FC(cluster.cluster_id), 0, 0, NULL,
     "The cluster's id, the same on every member and not 0: the Raft handshake refuses a peer "
     "of another cluster.",
     NULL, NULL, 0},
    {"data_dir", OT_STR, 0, FC(cluster.data_dir), 1, 0, NULL,
     "Directory of the Raft log and snapshots (created if missing; one fulcrumd at a time).",
     NULL, NULL, 0},
    {"raft_listen", OT_HOSTPORT, 0, FC(cluster.raft_listen), 0, 0, NULL,
     "Address of the Raft transport (peers connect here).", NULL, NULL, 0},
    {"api_listen", OT_HOSTPORT, 0, FC(cluster.api_listen), 0, 0, NULL,
     "Address of the HTTP/JSON control API.", NULL, NULL, 0},
    {"bootstrap", OT_BOOL, 0, FC(cluster.bootstrap), 0, 0, "false",
     "This node is one of the initial members of a brand-new cluster: self and peers become "
     "its first voters. Ignored once the data directory holds a log. false = join an existing "
     "cluster (an operator adds it with fulcrumctl member add).",
     NULL, NULL, 0},
    {"tick_ms", OT_UINT, 0, FC(cluster.tick_ms), 1, 1000, "10",
     "Raft clock tick (milliseconds); heartbeat and election timeouts are whole ticks.", NULL,
     NULL, 0},
    {"heartbeat_ms", OT_UINT, 0, FC(cluster.heartbeat_ms), 1, 60000, "50",
     "Leader heartbeat interval (milliseconds), at least tick_ms and fewer ticks than "
     "election_min_ms.",
     NULL, NULL, 0},
    {"election_min_ms", OT_UINT, 0, FC(cluster.election_min_ms), 2, 600000, "150",
     "Election timeout: each is drawn from [election_min_ms, 2 * election_min_ms) (the Raft "
     "core's fixed spread; 150 gives the usual 150-300 ms).",
     NULL, NULL, 0},
    {"snapshot_every", OT_UINT, 0, FC(cluster.snapshot_every), 1, 1000000000, "10000",
     "Take a snapshot (and compact the log) every this many applied entries.", NULL, NULL, 0},
    {"peers", OT_LIST, 0, offsetof(struct fulcrum_config, cluster.peers), 0, 0, 0, NULL,
     "The other members (this node's own entry may be listed too). With bootstrap, self + "
     "these are the initial voters, identical on every initial member.",
     NULL, &peer_schema, offsetof(struct fulcrum_config, cluster.n_peers)},
    {"admin_tokens", OT_STRLIST, 0, offsetof(struct fulcrum_config, cluster.admin_tokens),
     sizeof(((struct fulcrum_config *)0)->cluster.admin_tokens[0]), 0, CFG_MAX_TOKENS, "[]",
     "Bearer tokens allowed everything (at least 16 characters of letters, digits and -._~+/=). "
     "No token at all (admin or registration) leaves the API open: loopback labs only.",
     NULL, NULL, offsetof(struct fulcrum_config, cluster.n_admin_tokens)},
    {"registration_tokens", OT_LIST, 0, offsetof(struct fulcrum_config, cluster.reg_tokens), 0,
     0, 0, NULL, "Tokens scoped to named services (backend self-registration).", NULL,
     &regtoken_schema, offsetof(struct fulcrum_config, cluster.n_reg_tokens)},
};

static const struct schema cluster_schema = {
    "cluster",
    "Raft cluster membership, timing, the API and its tokens. Leave the whole group out for a "
    "single node (services from this file, no Raft, no API).",
    cluster_opts,
    NOPTS(cluster_opts),
    0,
    0,
    check_cluster};

static const struct schema node_schema = {"node", "This node.", node_opts, NOPTS(node_opts), 0,
					  0,	  NULL};
static const struct schema dataplane_schema = {"dataplane",
					       "DPDK: EAL, port, workers, memory, flows.",
					       dataplane_opts,
					       NOPTS(dataplane_opts),
					       0,
					       0,
					       NULL};

static const struct opt root_opts[] = {
    {"node", OT_GROUP, 0, 0, 0, 0, 0, NULL, "This node: name, addresses, hash seed, logging.", NULL,
     &node_schema, 0},
    {"dataplane", OT_GROUP, 0, 0, 0, 0, 0, NULL,
     "DPDK: EAL, the port, workers, memory, flow tables, SNAT ports, ARP timers.", NULL,
     &dataplane_schema, 0},
    {"services", OT_LIST, 0, offsetof(struct fulcrum_config, services), 0, 0, 0, NULL,
     "The services and their backends. With a cluster group they only seed a brand-new "
     "cluster (docs/cluster.md); the replicated state supplies them afterwards.",
     NULL, &service_schema, offsetof(struct fulcrum_config, n_services)},
    {"neighbours", OT_LIST, 0, offsetof(struct fulcrum_config, neighbours), 0, 0, 0, NULL,
     "Static neighbour (ARP) entries.", NULL, &neighbour_schema,
     offsetof(struct fulcrum_config, n_neighbours)},
    {"cluster", OT_GROUP, OF_PRESENCE, 0, 0, 0, 0, NULL,
     "Membership of a Raft cluster (docs/cluster.md). Absent: a single node.", NULL,
     &cluster_schema, offsetof(struct fulcrum_config, cluster.enabled)},
};

static const struct schema root_schema = {
    "",	       "A file holds up to five groups and lists; each may be left out.",
    root_opts, NOPTS(root_opts),
    0,	       0,
    check_root};

/* ---- Parsing context and messages ---- */

/* A default value, parsed once per load from its text in the table. */
struct dflt {
	const struct opt *o;
	config_t doc;
};

#define CFG_DFLT_MAX 96

struct ctx {
	const char *name; /* the file name for messages */
	char *err;
	size_t errlen;
	struct fulcrum_config *cfg;
	unsigned n_dflt;
	struct dflt dflt[CFG_DFLT_MAX];
};

static int fail(struct ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "NAME:LINE: PATH: message"; the line is left out when there is none (top level). */
static int fail(struct ctx *c, int line, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->errlen == 0)
		return -EINVAL;
	if (line > 0)
		n = snprintf(c->err, c->errlen, "%s:%d: ", c->name, line);
	else
		n = snprintf(c->err, c->errlen, "%s: ", c->name);
	if (n >= 0 && (size_t)n < c->errlen && path != NULL && path[0] != '\0') {
		int m = snprintf(c->err + n, c->errlen - (size_t)n, "%s: ", path);
		n = m < 0 ? m : n + m;
	}
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Paths are bounded by the schema's depth; truncation would only shorten a message. */
static void path_member(char *out, const char *base, const char *name)
{
	int n = snprintf(out, CFG_PATH_MAX, "%s%s%s", base, base[0] != '\0' ? "." : "", name);

	if (n < 0 || n >= CFG_PATH_MAX)
		out[CFG_PATH_MAX - 1] = '\0';
}

static void path_elem(char *out, const char *base, unsigned i)
{
	int n = snprintf(out, CFG_PATH_MAX, "%s.[%u]", base, i);

	if (n < 0 || n >= CFG_PATH_MAX)
		out[CFG_PATH_MAX - 1] = '\0';
}

static int line_of(const config_setting_t *s)
{
	return s != NULL ? (int)config_setting_source_line(s) : 0;
}

/* The line of member `name` of g, or fallback when it is absent (defaulted). */
static int member_line(const config_setting_t *g, const char *name, int fallback)
{
	const config_setting_t *m =
	    g != NULL ? config_setting_get_member((config_setting_t *)g, name) : NULL;

	return m != NULL ? line_of(m) : fallback;
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/* What a setting of this row must look like: for messages and the reference. */
static void expected(const struct opt *o, char *buf, size_t n)
{
	size_t k;

	switch (o->type) {
	case OT_STR:
		snprintf(buf, n, "a string of %lld to %zu characters", o->min, o->size - 1);
		break;
	case OT_NAME:
		snprintf(buf, n, "%s%lld to %lld letters, digits, '.', '_' or '-'",
			 (o->flags & OF_EMPTY_OK) ? "\"\" or " : "", o->min > 0 ? o->min : 1,
			 o->max);
		break;
	case OT_UINT:
		snprintf(buf, n, "an integer in %lld..%lld", o->min, o->max);
		break;
	case OT_BOOL:
		snprintf(buf, n, "true or false");
		break;
	case OT_ENUM:
		k = (size_t)snprintf(buf, n, "one of");
		for (const struct opt_name *e = o->names; e->name != NULL && k < n; e++)
			k += (size_t)snprintf(buf + k, n - k, "%s \"%s\"", e == o->names ? "" : ",",
					      e->name);
		break;
	case OT_ADDR:
		snprintf(buf, n, "%s%s address",
			 (o->flags & OF_EMPTY_OK) ? "\"\" (none) or an " : "an ",
			 (o->flags & (OF_V4 | OF_V6)) == (OF_V4 | OF_V6) ? "IPv4 or IPv6"
			 : (o->flags & OF_V4)				 ? "IPv4"
									 : "IPv6");
		break;
	case OT_MAC:
		snprintf(buf, n, "a unicast MAC address such as \"02:00:00:00:00:01\"");
		break;
	case OT_SECONDS:
		snprintf(buf, n, "a number of seconds > 0 and <= %lld", o->max);
		break;
	case OT_SEED:
		snprintf(
		    buf, n,
		    "a 64-bit value: a string of 1 to 16 hex digits after \"0x\" or of decimal "
		    "digits, or a non-negative integer");
		break;
	case OT_STRLIST:
		snprintf(buf, n, "a list of at most %lld strings of at most %zu characters", o->max,
			 o->size - 1);
		break;
	case OT_RANGE:
		snprintf(buf, n, "[lo, hi] with %lld <= lo <= hi <= %lld", o->min, o->max);
		break;
	case OT_GROUP:
		snprintf(buf, n, "a group { ... }");
		break;
	case OT_LIST:
		snprintf(buf, n, "a list ( { ... }, ... )");
		break;
	case OT_HOSTPORT:
		snprintf(buf, n, "\"IPv4:port\" or \"[IPv6]:port\", numeric, port 1..65535");
		break;
	}
}

static int fail_type(struct ctx *c, const struct opt *o, const config_setting_t *s, int line,
		     const char *path)
{
	char ex[256];

	expected(o, ex, sizeof(ex));
	return fail(c, line, path, "wrong type: %s (expected %s)", type_name(s), ex);
}

static int fail_value(struct ctx *c, const struct opt *o, int line, const char *path,
		      const char *what)
{
	char ex[256];

	expected(o, ex, sizeof(ex));
	return fail(c, line, path, "%s (expected %s)", what, ex);
}

/* ---- Scalars ---- */

static void store_uint(uint8_t *p, size_t size, uint64_t v)
{
	if (size == 1) {
		uint8_t x = (uint8_t)v;
		memcpy(p, &x, 1);
	} else if (size == 2) {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
	} else if (size == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
	} else {
		memcpy(p, &v, 8);
	}
}

static uint64_t load_uint(const uint8_t *p, size_t size)
{
	if (size == 1)
		return p[0];
	if (size == 2) {
		uint16_t x;
		memcpy(&x, p, 2);
		return x;
	}
	if (size == 4) {
		uint32_t x;
		memcpy(&x, p, 4);
		return x;
	}
	uint64_t x;
	memcpy(&x, p, 8);
	return x;
}

static int is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

int config_name_ok(const char *v)
{
	for (; *v != '\0'; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		      (*v >= '0' && *v <= '9') || *v == '.' || *v == '_' || *v == '-'))
			return 0;
	return 1;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "xx:xx:xx:xx:xx:xx" (or '-' separators), exactly. 0 or -EINVAL. */
static int mac_parse(const char *t, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int hi = hexval(t[0]), lo = hi < 0 ? -1 : hexval(t[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
		t += 2;
		if (i < 5) {
			if (*t != ':' && *t != '-')
				return -EINVAL;
			t++;
		}
	}
	return *t == '\0' ? 0 : -EINVAL;
}

/* A 64-bit seed from text: "0x" + 1..16 hex digits, or decimal digits up to 2^64 - 1. */
static int seed_parse(const char *t, uint64_t *out)
{
	uint64_t v = 0;

	if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
		size_t n = strlen(t + 2);
		if (n == 0 || n > 16)
			return -EINVAL;
		for (const char *p = t + 2; *p != '\0'; p++) {
			int h = hexval(*p);
			if (h < 0)
				return -EINVAL;
			v = v << 4 | (uint64_t)h;
		}
	} else {
		if (*t == '\0')
			return -EINVAL;
		for (const char *p = t; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			uint64_t d = (uint64_t)(*p - '0');
			if (v > (UINT64_MAX - d) / 10)
				return -EINVAL;
			v = v * 10 + d;
		}
	}
	*out = v;
	return 0;
}

/*
 * "a.b.c.d:port" or "[v6]:port" (what raft/transport and evhttp bind and dial),
 * port 1..65535. The address and port go to a and port when not NULL. 0 or -EINVAL.
 */
static int hostport_parse(const char *t, struct addr *a, uint16_t *port)
{
	char host[CFG_HOSTPORT_MAX];
	const char *colon;
	struct addr x;
	size_t hl;
	unsigned long v = 0;
	int bracket = t[0] == '[';

	if (bracket) {
		const char *close = strchr(t, ']');
		if (close == NULL || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - t - 1);
		t++;
		colon = close + 1;
	} else {
		colon = strrchr(t, ':');
		if (colon == NULL)
			return -EINVAL;
		hl = (size_t)(colon - t);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, t, hl);
	host[hl] = '\0';
	if (addr_parse(host, &x) < 0 || (x.family == ADDR_V6) != bracket)
		return -EINVAL;
	if (colon[1] == '\0' || strlen(colon + 1) > 5)
		return -EINVAL;
	for (const char *d = colon + 1; *d != '\0'; d++) {
		if (*d < '0' || *d > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*d - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	if (a != NULL)
		*a = x;
	if (port != NULL)
		*port = (uint16_t)v;
	return 0;
}

static int parse_str(struct ctx *c, const struct opt *o, const config_setting_t *s, int line,
		     const char *path, uint8_t *p)
{
	const char *v;
	size_t len, max = o->type == OT_NAME ? (size_t)o->max : o->size - 1;
	char what[128];

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(c, o, s, line, path);
	v = config_setting_get_string(s);
	len = strlen(v);
	if (len > max) {
		snprintf(what, sizeof(what), "%zu characters is too long", len);
		return fail_value(c, o, line, path, what);
	}
	if (o->type == OT_NAME && len == 0 && !(o->flags & OF_EMPTY_OK))
		return fail_value(c, o, line, path, "empty");
	if (o->type == OT_STR && (long long)len < o->min)
		return fail_value(c, o, line, path, "too short");
	if (o->type == OT_NAME && !config_name_ok(v)) {
		snprintf(what, sizeof(what), "\"%.64s\" has a character not allowed", v);
		return fail_value(c, o, line, path, what);
	}
	memcpy(p, v, len + 1);
	return 0;
}

static int parse_scalar(struct ctx *c, const struct opt *o, const config_setting_t *s, int line,
			const char *path, uint8_t *base)
{
	uint8_t *p = base + o->off;
	char what[160];

	switch (o->type) {
	case OT_STR:
	case OT_NAME:
		return parse_str(c, o, s, line, path, p);
	case OT_UINT: {
		long long v;
		if (!is_int(s))
			return fail_type(c, o, s, line, path);
		v = config_setting_get_int64(s);
		if (v < o->min || v > o->max) {
			snprintf(what, sizeof(what), "%lld is out of range", v);
			return fail_value(c, o, line, path, what);
		}
		store_uint(p, o->size, (uint64_t)v);
		return 0;
	}
	case OT_BOOL: {
		bool v;
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return fail_type(c, o, s, line, path);
		v = config_setting_get_bool(s) != 0;
		memcpy(p, &v, sizeof(v));
		return 0;
	}
	case OT_ENUM: {
		const char *v;
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail_type(c, o, s, line, path);
		v = config_setting_get_string(s);
		for (const struct opt_name *e = o->names; e->name != NULL; e++) {
			if (strcmp(e->name, v) == 0) {
				store_uint(p, o->size, (uint64_t)e->value);
				return 0;
			}
		}
		snprintf(what, sizeof(what), "\"%.64s\" is not valid", v);
		return fail_value(c, o, line, path, what);
	}
	case OT_ADDR: {
		struct addr a;
		const char *v;
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail_type(c, o, s, line, path);
		v = config_setting_get_string(s);
		if (v[0] == '\0' && (o->flags & OF_EMPTY_OK)) {
			memset(&a, 0, sizeof(a));
		} else if (addr_parse(v, &a) < 0) {
			snprintf(what, sizeof(what), "\"%.64s\" is not an address", v);
			return fail_value(c, o, line, path, what);
		} else if ((a.family == ADDR_V4 && !(o->flags & OF_V4)) ||
			   (a.family == ADDR_V6 && !(o->flags & OF_V6))) {
			snprintf(what, sizeof(what), "\"%.64s\" is of the wrong family", v);
			return fail_value(c, o, line, path, what);
		}
		memcpy(p, &a, sizeof(a));
		return 0;
	}
	case OT_MAC: {
		uint8_t mac[6];
		const char *v;
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail_type(c, o, s, line, path);
		v = config_setting_get_string(s);
		if (mac_parse(v, mac) < 0) {
			snprintf(what, sizeof(what), "\"%.64s\" is not a MAC address", v);
			return fail_value(c, o, line, path, what);
		}
		if ((mac[0] & 1) || (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0) {
			snprintf(what, sizeof(what), "\"%.64s\" is %s", v,
				 (mac[0] & 1) ? "a multicast address" : "all zero");
			return fail_value(c, o, line, path, what);
		}
		memcpy(p, mac, 6);
		return 0;
	}
	case OT_SECONDS: {
		double v;
		uint64_t ns;
		if (is_int(s))
			v = (double)config_setting_get_int64(s);
		else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
			v = config_setting_get_float(s);
		else
			return fail_type(c, o, s, line, path);
		if (!(v > 0) || v > (double)o->max) {
			snprintf(what, sizeof(what), "%g is out of range", v);
			return fail_value(c, o, line, path, what);
		}
		ns = (uint64_t)(v * (double)NS_PER_S + 0.5);
		if (ns == 0)
			return fail_value(c, o, line, path, "shorter than a nanosecond");
		memcpy(p, &ns, sizeof(ns));
		return 0;
	}
	case OT_SEED: {
		uint64_t v;
		if (is_int(s)) {
			long long i = config_setting_get_int64(s);
			if (i < 0)
				return fail_value(c, o, line, path, "negative");
			v = (uint64_t)i;
		} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
			const char *t = config_setting_get_string(s);
			if (seed_parse(t, &v) < 0) {
				snprintf(what, sizeof(what), "\"%.64s\" is not a 64-bit value", t);
				return fail_value(c, o, line, path, what);
			}
		} else {
			return fail_type(c, o, s, line, path);
		}
		memcpy(p, &v, sizeof(v));
		return 0;
	}
	case OT_STRLIST: {
		int n;
		unsigned count;
		char ep[CFG_PATH_MAX];
		if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
		    config_setting_type(s) != CONFIG_TYPE_LIST)
			return fail_type(c, o, s, line, path);
		n = config_setting_length(s);
		if (n > o->max) {
			snprintf(what, sizeof(what), "%d strings is too many", n);
			return fail_value(c, o, line, path, what);
		}
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			int el = line_of(e) > 0 ? line_of(e) : line;
			path_elem(ep, path, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				return fail_type(c, o, e, el, ep);
			if (strlen(config_setting_get_string(e)) > o->size - 1)
				return fail_value(c, o, el, ep, "too long");
			memcpy(p + (size_t)i * o->size, config_setting_get_string(e),
			       strlen(config_setting_get_string(e)) + 1);
		}
		count = (unsigned)n;
		memcpy(base + o->off2, &count, sizeof(count));
		return 0;
	}
	case OT_RANGE: {
		long long v[2];
		if ((config_setting_type(s) != CONFIG_TYPE_ARRAY &&
		     config_setting_type(s) != CONFIG_TYPE_LIST) ||
		    config_setting_length(s) != 2)
			return fail_value(c, o, line, path, "not a pair");
		for (unsigned i = 0; i < 2; i++) {
			const config_setting_t *e = config_setting_get_elem(s, i);
			if (!is_int(e))
				return fail_value(c, o, line, path, "not a pair of integers");
			v[i] = config_setting_get_int64(e);
			if (v[i] < o->min || v[i] > o->max) {
				snprintf(what, sizeof(what), "%lld is out of range", v[i]);
				return fail_value(c, o, line, path, what);
			}
		}
		if (v[0] > v[1]) {
			snprintf(what, sizeof(what), "lo %lld is above hi %lld", v[0], v[1]);
			return fail_value(c, o, line, path, what);
		}
		store_uint(p, 2, (uint64_t)v[0]);
		store_uint(base + o->off2, 2, (uint64_t)v[1]);
		return 0;
	}
	case OT_HOSTPORT: {
		const char *v;
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail_type(c, o, s, line, path);
		v = config_setting_get_string(s);
		if (strlen(v) >= o->size || hostport_parse(v, NULL, NULL) < 0) {
			snprintf(what, sizeof(what), "\"%.64s\" is not a numeric address and port", v);
			return fail_value(c, o, line, path, what);
		}
		memcpy(p, v, strlen(v) + 1);
		return 0;
	}
	case OT_GROUP:
	case OT_LIST:
		break;
	}
	return fail(c, line, path, "internal error: bad table row");
}

/* The default of o as a parsed setting (parsed on first use, kept for the load). */
static const config_setting_t *default_of(struct ctx *c, const struct opt *o)
{
	char text[512];
	struct dflt *d;

	for (unsigned i = 0; i < c->n_dflt; i++)
		if (c->dflt[i].o == o)
			return config_lookup(&c->dflt[i].doc, "v");
	if (c->n_dflt == CFG_DFLT_MAX)
		return NULL;
	d = &c->dflt[c->n_dflt];
	config_init(&d->doc);
	snprintf(text, sizeof(text), "v = %s;", o->def);
	if (config_read_string(&d->doc, text) != CONFIG_TRUE) {
		config_destroy(&d->doc);
		return NULL;
	}
	d->o = o;
	c->n_dflt++;
	return config_lookup(&d->doc, "v");
}

/* ---- Groups and lists ---- */

static int parse_group(struct ctx *c, const struct schema *sc, const config_setting_t *g, int line,
		       const char *path, uint8_t *base);

static void free_group(const struct schema *sc, uint8_t *base)
{
	for (size_t i = 0; i < sc->n_opts; i++) {
		const struct opt *o = &sc->opts[i];
		if (o->type == OT_GROUP) {
			free_group(o->sub, base + o->off);
		} else if (o->type == OT_LIST) {
			uint8_t *items;
			uint32_t n;
			memcpy(&items, base + o->off, sizeof(items));
			memcpy(&n, base + o->off2, sizeof(n));
			for (uint32_t k = 0; items != NULL && k < n; k++)
				free_group(o->sub, items + (size_t)k * o->sub->item_size);
			free(items);
			items = NULL;
			n = 0;
			memcpy(base + o->off, &items, sizeof(items));
			memcpy(base + o->off2, &n, sizeof(n));
		}
	}
}

static int parse_list(struct ctx *c, const struct opt *o, const config_setting_t *s, int line,
		      const char *path, uint8_t *base)
{
	const struct schema *sc = o->sub;
	uint8_t *items;
	uint32_t n;
	char ep[CFG_PATH_MAX];
	int rc;

	if (s == NULL) {
		n = 0;
	} else if (config_setting_type(s) == CONFIG_TYPE_LIST ||
		   (config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)) {
		n = (uint32_t)config_setting_length(s);
	} else {
		return fail_type(c, o, s, line, path);
	}
	if (n > sc->max_items) {
		char what[64];
		snprintf(what, sizeof(what), "%u entries is too many", n);
		return fail(c, line, path, "%s (expected at most %u)", what, sc->max_items);
	}
	items = calloc(n ? n : 1, sc->item_size);
	if (items == NULL)
		return -ENOMEM;
	/* Stored at once so that config_free finds whatever is parsed before an error. */
	memcpy(base + o->off, &items, sizeof(items));
	memcpy(base + o->off2, &n, sizeof(n));
	for (uint32_t i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		int el = line_of(e) > 0 ? line_of(e) : line;
		path_elem(ep, path, i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(c, el, ep, "wrong type: %s (expected a group { ... })",
				    type_name(e));
		rc = parse_group(c, sc, e, el, ep, items + (size_t)i * sc->item_size);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_group(struct ctx *c, const struct schema *sc, const config_setting_t *g, int line,
		       const char *path, uint8_t *base)
{
	char op[CFG_PATH_MAX];
	int rc;

	/* Unknown names first: a typo would otherwise surface as a confusing default. */
	for (int i = 0; g != NULL && i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		size_t k;
		for (k = 0; k < sc->n_opts; k++)
			if (strcmp(sc->opts[k].name, name) == 0)
				break;
		if (k == sc->n_opts) {
			char known[1024];
			size_t n = 0;
			for (size_t j = 0; j < sc->n_opts && n < sizeof(known); j++)
				n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s",
						      j ? ", " : "", sc->opts[j].name);
			path_member(op, path, name);
			return fail(c, line_of(m), op, "unknown setting (expected one of: %s)",
				    known);
		}
	}
	for (size_t i = 0; i < sc->n_opts; i++) {
		const struct opt *o = &sc->opts[i];
		const config_setting_t *s =
		    g != NULL ? config_setting_get_member((config_setting_t *)g, o->name) : NULL;
		int ol = s != NULL && line_of(s) > 0 ? line_of(s) : line;

		path_member(op, path, o->name);
		if (o->type == OT_GROUP && (o->flags & OF_PRESENCE) && s == NULL) {
			continue;
		} else if (o->type == OT_GROUP) {
			if (s != NULL && config_setting_type(s) != CONFIG_TYPE_GROUP)
				return fail_type(c, o, s, ol, op);
			if (o->flags & OF_PRESENCE) {
				bool on = true;
				memcpy(base + o->off2, &on, sizeof(on));
			}
			rc = parse_group(c, o->sub, s, ol, op, base + o->off);
		} else if (o->type == OT_LIST) {
			rc = parse_list(c, o, s, ol, op, base);
		} else if (s != NULL) {
			rc = parse_scalar(c, o, s, ol, op, base);
		} else if (o->def == NULL) {
			char ex[256];
			expected(o, ex, sizeof(ex));
			rc = fail(c, line, op, "missing (expected %s)", ex);
		} else {
			s = default_of(c, o);
			if (s == NULL)
				return fail(c, line, op, "internal error: default %s unusable",
					    o->def);
			rc = parse_scalar(c, o, s, line, op, base);
		}
		if (rc < 0)
			return rc;
	}
	if (sc->check != NULL)
		return sc->check(c, g, line, path, base);
	return 0;
}

/* ---- Cross-checks ---- */

/* EAL --lcores syntax ("0,1", "0-3", "0@(0-1),(1,2)@3"): the number of lcore ids, or -1. */
static int lcores_count(const char *s)
{
	uint8_t seen[1024 / 8] = {0};
	int n = 0;

	if (*s == '\0')
		return -1;
	for (;;) {
		/* an lcore set, then optionally '@' and a cpu set; both "N", "N-M" or "(items)" */
		for (int part = 0; part < 2; part++) {
			int paren = *s == '(';
			if (paren)
				s++;
			for (;;) {
				char *end;
				long lo, hi;
				if (*s < '0' || *s > '9')
					return -1;
				lo = strtol(s, &end, 10);
				s = end;
				hi = lo;
				if (*s == '-') {
					s++;
					if (*s < '0' || *s > '9')
						return -1;
					hi = strtol(s, &end, 10);
					s = end;
				}
				if (lo > hi || hi >= 1024)
					return -1;
				for (long i = lo; part == 0 && i <= hi; i++) {
					if (!(seen[i / 8] & (1u << (i % 8))))
						n++;
					seen[i / 8] |= (uint8_t)(1u << (i % 8));
				}
				if (!paren || *s != ',')
					break;
				s++;
			}
			if (paren) {
				if (*s != ')')
					return -1;
				s++;
			}
			if (part == 0 && *s != '@')
				break;
			if (part == 0)
				s++;
		}
		if (*s == '\0')
			return n;
		if (*s != ',')
			return -1;
		s++;
	}
}

/*
 * What dpdk_open requires of the mempool: every RX descriptor, TX descriptor,
 * RX burst in hand and TX buffer of each worker, each lcore's cache, and with
 * several workers each worker's handoff ring (reply steering: rx_desc
 * entries, dpdk_setup_steer) plus the burst its owner takes from it next to
 * its RX burst. The rings exist only when the node has an address to SNAT
 * from; they are counted whenever workers > 1, so that the sum depends on the
 * dataplane settings alone (what the help text states), at the cost of
 * unused mbufs on a node with no address at all.
 */
static uint32_t mbufs_needed(const struct cfg_dataplane *dp)
{
	uint32_t need = dp->workers * (uint32_t)(dp->rx_desc + dp->tx_desc + 2u * dp->burst) +
			(dp->workers + 1) * dp->mbuf_cache;

	if (dp->workers > 1)
		need += dp->workers * (uint32_t)(dp->rx_desc + dp->burst);
	return need;
}

static int check_root(struct ctx *c, const config_setting_t *g, int line, const char *path,
		      uint8_t *base)
{
	struct fulcrum_config *cfg = (struct fulcrum_config *)base;
	struct cfg_dataplane *dp = &cfg->dp;
	const config_setting_t *dps =
	    g ? config_setting_get_member((config_setting_t *)g, "dataplane") : NULL;
	int dl = dps ? line_of(dps) : line;
	uint32_t need;

	(void)path;
	if (dp->lcores[0] != '\0') {
		int n = lcores_count(dp->lcores);
		int l = member_line(dps, "lcores", dl);
		if (n < 0)
			return fail(
			    c, l, "dataplane.lcores",
			    "\"%s\" is not an lcore list (expected e.g. \"0,1\", \"0-2\" or "
			    "\"0@(0-1),1@(0-1)\")",
			    dp->lcores);
		if ((unsigned)n < dp->workers + 1)
			return fail(c, l, "dataplane.lcores",
				    "names %d lcores, too few for %u workers (expected at least "
				    "workers + 1: the control lcore and one per worker)",
				    n, dp->workers);
	}
	if ((unsigned)(dp->snat_port_hi - dp->snat_port_lo) + 1 < dp->workers)
		return fail(c, member_line(dps, "snat_ports", dl), "dataplane.snat_ports",
			    "%u ports for %u workers (expected at least one port per worker)",
			    (unsigned)(dp->snat_port_hi - dp->snat_port_lo) + 1, dp->workers);
	need = mbufs_needed(dp);
	if (dp->mbufs == 0) {
		uint32_t n = need + 1024, m = 1;
		/* 2^n - 1: the mempool ring's natural size (DPDK's advice for
		 * rte_pktmbuf_pool_create). */
		while (m - 1 < n)
			m <<= 1;
		dp->mbufs = m - 1;
	} else if (dp->mbufs < need) {
		return fail(c, member_line(dps, "mbufs", dl), "dataplane.mbufs",
			    "%u is too few (expected 0 or at least %u = workers * (rx_desc + "
			    "tx_desc + 2 * burst) + (workers + 1) * mbuf_cache%s)",
			    dp->mbufs, need,
			    dp->workers > 1 ? " + workers * (rx_desc + burst) for the handoff rings"
					    : "");
	}
	/*
	 * DPDK refuses a cache above mbufs / 1.5; mbufs >= 2 * mbuf_cache (the
	 * sum above, workers >= 1) already keeps it below that.
	 */
	return 0;
}

static uint32_t next_prime(uint32_t x)
{
	while (x < MAGLEV_MAX_SIZE && !maglev_is_prime(x))
		x++;
	return x;
}

static const char *mode_str(unsigned mode)
{
	for (const struct opt_name *e = mode_names; e->name != NULL; e++)
		if ((unsigned)e->value == mode)
			return e->name;
	return "?";
}

static int check_backends(struct ctx *c, const config_setting_t *g, const char *spath,
			  struct cfg_service *s)
{
	char path[CFG_PATH_MAX];
	const config_setting_t *bl =
	    g ? config_setting_get_member((config_setting_t *)g, "backends") : NULL;
	char bp[CFG_PATH_MAX], fp[CFG_PATH_MAX];
	uint32_t weighted = 0;

	path_member(path, spath, "backends");
	for (uint32_t i = 0; i < s->n_backends; i++) {
		struct cfg_backend *b = &s->backends[i];
		const config_setting_t *bs = config_setting_get_elem(bl, i);
		int bline = line_of(bs);
		char ba[ADDR_STRLEN];

		path_elem(bp, path, i);
		addr_format(&b->addr, ba, sizeof(ba));
		if (s->mode == FWD_MODE_TUNNEL ? b->addr.family != ADDR_V4
					       : b->addr.family != s->vip.family) {
			path_member(fp, bp, "address");
			return fail(c, member_line(bs, "address", bline), fp,
				    "%s does not fit mode %s with VIP family IPv%u (expected an %s "
				    "address)",
				    ba, mode_str(s->mode), s->vip.family,
				    s->mode == FWD_MODE_TUNNEL || s->vip.family == ADDR_V4
					? "IPv4"
					: "IPv6");
		}
		if (b->port == 0)
			b->port = s->port;
		if (s->mode != FWD_MODE_NAT && b->port != s->port) {
			path_member(fp, bp, "port");
			return fail(c, member_line(bs, "port", bline), fp,
				    "%u differs from the service port in %s mode, which cannot "
				    "rewrite ports (expected 0 or %u)",
				    b->port, mode_str(s->mode), s->port);
		}
		b->uid = config_backend_uid(&b->addr, b->port);
		for (uint32_t j = 0; j < i; j++) {
			const struct cfg_backend *o = &s->backends[j];
			if (addr_eq(&o->addr, &b->addr) && o->port == b->port)
				return fail(c, bline, bp,
					    "backend %s port %u is listed twice (first at line %d; "
					    "expected each address and port once)",
					    ba, b->port, line_of(config_setting_get_elem(bl, j)));
			if (o->uid == b->uid)
				return fail(
				    c, bline, bp,
				    "uid %u of %s port %u collides with the backend at line "
				    "%d (a 32-bit hash collision; expected distinct uids: "
				    "change one port or address)",
				    b->uid, ba, b->port, line_of(config_setting_get_elem(bl, j)));
		}
		if (b->weight > 0)
			weighted++;
	}
	if (s->table_size < weighted) {
		path_member(fp, spath, "table_size");
		return fail(
		    c, member_line(g, "table_size", line_of(g)), fp,
		    "%u slots for %u backends with weight > 0 (expected a prime of at least "
		    "%u, better 100 times that)",
		    s->table_size, weighted, next_prime(weighted));
	}
	return 0;
}

static int check_service(struct ctx *c, const config_setting_t *g, int line, const char *path,
			 uint8_t *base)
{
	struct cfg_service *s = (struct cfg_service *)base;
	const struct fulcrum_config *cfg = c->cfg;
	uint32_t idx = (uint32_t)(s - cfg->services);
	char fp[CFG_PATH_MAX], vip[ADDR_STRLEN];

	s->line = line;
	addr_format(&s->vip, vip, sizeof(vip));
	for (uint32_t j = 0; j < idx; j++) {
		const struct cfg_service *o = &cfg->services[j];
		if (strcmp(o->name, s->name) == 0) {
			path_member(fp, path, "name");
			return fail(
			    c, member_line(g, "name", line), fp,
			    "\"%s\" is already the name of the service at line %d (expected "
			    "unique names)",
			    s->name, o->line);
		}
		if (addr_eq(&o->vip, &s->vip) && o->port == s->port && o->proto == s->proto)
			return fail(c, line, path,
				    "%s port %u %s is already service \"%s\" at line %d (expected "
				    "each vip, port and proto once)",
				    vip, s->port, s->proto == IPPROTO_TCP ? "tcp" : "udp", o->name,
				    o->line);
	}
	path_member(fp, path, "vip");
	if (addr_eq(&s->vip, &cfg->node_v4) || addr_eq(&s->vip, &cfg->node_v6))
		return fail(c, member_line(g, "vip", line), fp,
			    "%s is the node address (expected a VIP distinct from node.address "
			    "and node.address6)",
			    vip);
	path_member(fp, path, "mode");
	if (s->mode == FWD_MODE_NAT) {
		const struct addr *node = s->vip.family == ADDR_V4 ? &cfg->node_v4 : &cfg->node_v6;
		if (node->family != s->vip.family)
			return fail(c, member_line(g, "mode", line), fp,
				    "nat needs a node address of the VIP's family (expected %s to "
				    "be set)",
				    s->vip.family == ADDR_V4 ? "node.address" : "node.address6");
	}
	if (s->mode == FWD_MODE_TUNNEL && cfg->node_v4.family != ADDR_V4)
		return fail(c, member_line(g, "mode", line), fp,
			    "tunnel needs an IPv4 node address as outer source (expected "
			    "node.address to be set)");
	if (!maglev_is_prime(s->table_size)) {
		path_member(fp, path, "table_size");
		return fail(c, member_line(g, "table_size", line), fp,
			    "%u is not prime (expected a prime, e.g. %u)", s->table_size,
			    next_prime(s->table_size));
	}
	return check_backends(c, g, path, s);
}

static int check_neighbour(struct ctx *c, const config_setting_t *g, int line, const char *path,
			   uint8_t *base)
{
	const struct cfg_neighbour *nb = (const struct cfg_neighbour *)base;
	uint32_t idx = (uint32_t)(nb - c->cfg->neighbours);
	char a[ADDR_STRLEN], fp[CFG_PATH_MAX];

	for (uint32_t j = 0; j < idx; j++) {
		if (addr_eq(&c->cfg->neighbours[j].addr, &nb->addr)) {
			addr_format(&nb->addr, a, sizeof(a));
			path_member(fp, path, "address");
			return fail(c, member_line(g, "address", line), fp,
				    "%s is listed twice (first at line %d; expected each address "
				    "once)",
				    a,
				    line_of(config_setting_get_elem(config_setting_parent(g), j)));
		}
	}
	return 0;
}

/* RFC 6750 b64token characters (and no '=' except trailing, which we do not insist on). */
static int token_ok(const char *t)
{
	for (; *t != '\0'; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || strchr("-._~+/=", *t) != NULL))
			return 0;
	return 1;
}

/* The line of element i of list member `name` of g, or fallback. */
static int elem_line(const config_setting_t *g, const char *name, unsigned i, int fallback)
{
	const config_setting_t *l =
	    g != NULL ? config_setting_get_member((config_setting_t *)g, name) : NULL;
	const config_setting_t *e = l != NULL ? config_setting_get_elem(l, i) : NULL;

	return e != NULL && line_of(e) > 0 ? line_of(e) : fallback;
}

bool config_peer_is_self(const struct fulcrum_config *cfg, uint32_t i)
{
	return i < cfg->cluster.n_peers && cfg->cluster.peers[i].id == cfg->cluster.id;
}

/* Tokens: shape, and no token twice (one secret must mean one thing). */
static int check_tokens(struct ctx *c, const config_setting_t *g, int line,
			const struct cfg_cluster *cl)
{
	char fp[CFG_PATH_MAX];
	const char *all[2 * CFG_MAX_TOKENS];
	int lines[2 * CFG_MAX_TOKENS];
	unsigned n = 0;

	for (unsigned i = 0; i < cl->n_admin_tokens; i++) {
		const char *t = cl->admin_tokens[i];
		int l = elem_line(g, "admin_tokens", i, line);
		path_elem(fp, "cluster.admin_tokens", i);
		if (strlen(t) < CFG_TOKEN_MIN || !token_ok(t))
			return fail(c, l, fp,
				    "not a usable token (expected at least %d characters of letters, "
				    "digits and -._~+/=)",
				    CFG_TOKEN_MIN);
		lines[n] = l;
		all[n++] = t;
	}
	for (uint32_t i = 0; i < cl->n_reg_tokens; i++) {
		const struct cfg_reg_token *r = &cl->reg_tokens[i];
		int l = elem_line(g, "registration_tokens", i, line);
		char ep[CFG_PATH_MAX];
		path_elem(ep, "cluster.registration_tokens", i);
		path_member(fp, ep, "token");
		if (!token_ok(r->token))
			return fail(c, l, fp,
				    "has a character not allowed (expected letters, digits and "
				    "-._~+/=)");
		lines[n] = l;
		all[n++] = r->token;
		path_member(fp, ep, "services");
		if (r->n_services == 0)
			return fail(c, l, fp, "empty (expected at least one service name)");
		for (unsigned k = 0; k < r->n_services; k++) {
			const char *sn = r->services[k];
			if (sn[0] == '\0' || strlen(sn) > CFG_NAME_MAX - 1 || !config_name_ok(sn))
				return fail(c, l, fp,
					    "\"%.64s\" is not a service name (expected 1 to %d "
					    "letters, digits, '.', '_' or '-')",
					    sn, CFG_NAME_MAX - 1);
		}
	}
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++)
			if (strcmp(all[i], all[j]) == 0)
				return fail(c, lines[i], "cluster",
					    "a token is listed twice (first at line %d; expected "
					    "each token once)",
					    lines[j]);
	return 0;
}

static int check_cluster(struct ctx *c, const config_setting_t *g, int line, const char *path,
			 uint8_t *base)
{
	struct fulcrum_config *cfg = (struct fulcrum_config *)base;
	const struct cfg_cluster *cl = &cfg->cluster;
	char fp[CFG_PATH_MAX], ep[CFG_PATH_MAX];
	uint32_t members = 1;

	(void)path;
	if (cl->cluster_id == 0)
		return fail(c, member_line(g, "cluster_id", line), "cluster.cluster_id",
			    "0 is reserved (expected a non-zero 64-bit value, the same on every "
			    "member)");
	if (strcmp(cl->raft_listen, cl->api_listen) == 0)
		return fail(c, member_line(g, "api_listen", line), "cluster.api_listen",
			    "\"%s\" is also raft_listen (expected two different addresses)",
			    cl->api_listen);
	/*
	 * The core's timeouts are whole ticks: heartbeat >= 1 tick, fewer ticks
	 * than the election timeout, and an election timeout of >= 2 ticks so
	 * the randomised spread [e, 2e) is not empty (controlplane/node.c).
	 */
	if (cl->heartbeat_ms < cl->tick_ms)
		return fail(c, member_line(g, "heartbeat_ms", line), "cluster.heartbeat_ms",
			    "%u is shorter than tick_ms %u (expected at least one tick)",
			    cl->heartbeat_ms, cl->tick_ms);
	if (cl->election_min_ms / cl->tick_ms < 2 ||
	    cl->heartbeat_ms / cl->tick_ms >= cl->election_min_ms / cl->tick_ms)
		return fail(c, member_line(g, "election_min_ms", line), "cluster.election_min_ms",
			    "%u gives %u ticks of %u ms with a heartbeat of %u ticks (expected at "
			    "least 2 ticks and more than the heartbeat, e.g. 3 * heartbeat_ms)",
			    cl->election_min_ms, cl->election_min_ms / cl->tick_ms, cl->tick_ms,
			    cl->heartbeat_ms / cl->tick_ms);
	for (uint32_t i = 0; i < cl->n_peers; i++) {
		const struct cfg_peer *p = &cl->peers[i];
		int l = elem_line(g, "peers", i, line);
		path_elem(ep, "cluster.peers", i);
		if (p->id == cl->id) {
			if (strcmp(p->raft, cl->raft_listen) != 0 ||
			    strcmp(p->api, cl->api_listen) != 0)
				return fail(c, l, ep,
					    "id %llu is this node but its addresses differ from "
					    "raft_listen/api_listen (expected %s and %s, or leave "
					    "this node out of peers)",
					    (unsigned long long)p->id, cl->raft_listen,
					    cl->api_listen);
			continue;
		}
		members++;
		path_member(fp, ep, "raft");
		if (strcmp(p->raft, cl->raft_listen) == 0)
			return fail(c, l, fp,
				    "\"%s\" is this node's raft_listen (expected the address of "
				    "member %llu)",
				    p->raft, (unsigned long long)p->id);
		path_member(fp, ep, "api");
		if (strcmp(p->api, cl->api_listen) == 0 || strcmp(p->api, p->raft) == 0)
			return fail(c, l, fp,
				    "\"%s\" is already this node's api_listen or the member's "
				    "raft address (expected its own API address)",
				    p->api);
		for (uint32_t j = 0; j < i; j++) {
			const struct cfg_peer *o = &cl->peers[j];
			int ol = elem_line(g, "peers", j, line);
			if (o->id == p->id)
				return fail(c, l, ep,
					    "id %llu is listed twice (first at line %d; expected "
					    "unique ids)",
					    (unsigned long long)p->id, ol);
			if (strcmp(o->raft, p->raft) == 0 || strcmp(o->api, p->api) == 0 ||
			    strcmp(o->raft, p->api) == 0 || strcmp(o->api, p->raft) == 0)
				return fail(c, l, ep,
					    "an address of member %llu is also member %llu's (line "
					    "%d; expected distinct addresses)",
					    (unsigned long long)p->id, (unsigned long long)o->id,
					    ol);
		}
	}
	if (members > CFG_MAX_PEERS)
		return fail(c, member_line(g, "peers", line), "cluster.peers",
			    "%u members with this node (expected at most %d)", members,
			    CFG_MAX_PEERS);
	return check_tokens(c, g, line, cl);
}

/* ---- Loading ---- */

/*
 * libconfig 1.5 silently truncates an integer literal without the L suffix
 * to 32 bits (3000000000 reads as -1294967296, 4294967297 as 1), which would
 * turn a typo into a plausible value. So the text is scanned first, skipping
 * strings and comments, and such literals are refused with their line. The
 * same scan refuses @include (a node's config is one self-contained file).
 */
static int prescan(struct ctx *c, const char *t)
{
	int line = 1;

	while (*t != '\0') {
		if (*t == '\n') {
			line++;
			t++;
		} else if (*t == '#' || (t[0] == '/' && t[1] == '/')) {
			while (*t != '\0' && *t != '\n')
				t++;
		} else if (t[0] == '/' && t[1] == '*') {
			for (t += 2; *t != '\0' && !(t[0] == '*' && t[1] == '/'); t++)
				if (*t == '\n')
					line++;
			if (*t != '\0')
				t += 2;
		} else if (*t == '"') {
			for (t++; *t != '\0' && *t != '"'; t++) {
				if (*t == '\\' && t[1] != '\0')
					t++;
				if (*t == '\n')
					line++;
			}
			if (*t != '\0')
				t++;
		} else if (*t == '@') {
			return fail(c, line, NULL,
				    "@include and other directives are not supported (expected one "
				    "self-contained file)");
		} else if ((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || *t == '*') {
			while ((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
			       (*t >= '0' && *t <= '9') || *t == '_' || *t == '-' || *t == '*')
				t++;
		} else if (*t >= '0' && *t <= '9') {
			const char *s = t;
			int hex = t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
			unsigned long long v;
			char *end;
			if (hex)
				t += 2;
			while ((*t >= '0' && *t <= '9') ||
			       (hex && ((*t >= 'a' && *t <= 'f') || (*t >= 'A' && *t <= 'F'))))
				t++;
			if (!hex && (*t == '.' || *t == 'e' || *t == 'E')) {
				/* a float: skip the rest of it */
				while ((*t >= '0' && *t <= '9') || *t == '.' || *t == 'e' ||
				       *t == 'E' || *t == '+' || *t == '-')
					t++;
				continue;
			}
			errno = 0;
			v = strtoull(s, &end, hex ? 16 : 10);
			if (*t == 'L') {
				if (errno != 0 || v > (unsigned long long)INT64_MAX)
					return fail(
					    c, line, NULL,
					    "integer %.*s does not fit in 64 bits (expected "
					    "at most 9223372036854775807L)",
					    (int)(t - s), s);
				t++;
			} else if (errno != 0 || v > (unsigned long long)INT32_MAX) {
				return fail(
				    c, line, NULL,
				    "integer %.*s does not fit in 32 bits, which libconfig "
				    "would silently truncate (expected at most 2147483647, or "
				    "a 64-bit integer with an L suffix)",
				    (int)(t - s), s);
			}
		} else {
			t++;
		}
	}
	return 0;
}

static int load_text(const char *text, const char *name, struct fulcrum_config *cfg, char *err,
		     size_t errlen)
{
	struct ctx *c;
	config_t doc;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (errlen > 0)
		err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	c->name = name;
	c->err = err;
	c->errlen = errlen;
	c->cfg = cfg;
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	rc = prescan(c, text);
	if (rc == 0) {
		config_init(&doc);
		if (config_read_string(&doc, text) != CONFIG_TRUE) {
			rc = fail(c, config_error_line(&doc), NULL, "syntax error: %s",
				  config_error_text(&doc));
		} else {
			const config_setting_t *root = config_root_setting(&doc);
			rc = parse_group(c, &root_schema, root, 0, "", (uint8_t *)cfg);
		}
		config_destroy(&doc);
	}
	for (unsigned i = 0; i < c->n_dflt; i++)
		config_destroy(&c->dflt[i].doc);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", name);
	free(c);
	if (rc < 0)
		config_free(cfg);
	return rc;
}

int config_load_string(const char *text, const char *name, struct fulcrum_config *cfg, char *err,
		       size_t errlen)
{
	return load_text(text, name != NULL ? name : "(string)", cfg, err, errlen);
}

int config_load(const char *path, struct fulcrum_config *cfg, char *err, size_t errlen)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	f = fopen(path, "r");
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	for (;;) {
		size_t n;
		if (cap - len < 4097) {
			char *t;
			cap = cap ? cap * 2 : 16384;
			if (cap > CFG_FILE_MAX + 4097) {
				fclose(f);
				free(text);
				snprintf(err, errlen, "%s: larger than %u bytes", path,
					 CFG_FILE_MAX);
				return -EFBIG;
			}
			t = realloc(text, cap);
			if (t == NULL) {
				fclose(f);
				free(text);
				snprintf(err, errlen, "%s: out of memory", path);
				return -ENOMEM;
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fclose(f);
		free(text);
		snprintf(err, errlen, "%s: read error", path);
		return -EIO;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		snprintf(err, errlen, "%s: contains a NUL byte (expected a text file)", path);
		return -EINVAL;
	}
	rc = load_text(text, path, cfg, err, errlen);
	free(text);
	return rc;
}

void config_free(struct fulcrum_config *cfg)
{
	if (cfg == NULL)
		return;
	free_group(&root_schema, (uint8_t *)cfg);
	memset(cfg, 0, sizeof(*cfg));
}

uint32_t config_backend_uid(const struct addr *a, uint16_t port)
{
	uint8_t id[19];
	uint32_t uid;

	/* The serialization Maglev hashes (maglev.h), so one identity means one thing everywhere.
	 */
	id[0] = a->family;
	memcpy(id + 1, a->b, 16);
	id[17] = (uint8_t)(port >> 8);
	id[18] = (uint8_t)port;
	uid = (uint32_t)hash_bytes(id, sizeof(id), CFG_UID_SEED);
	/* 0 means "no backend" to fwd; fold it onto a fixed value (collisions are detected). */
	return uid != 0 ? uid : 0x9e3779b9u;
}

int config_neigh_static(void *ctx, const struct addr *a, uint8_t mac[6])
{
	const struct fulcrum_config *cfg = ctx;

	for (uint32_t i = 0; i < cfg->n_neighbours; i++) {
		if (addr_eq(&cfg->neighbours[i].addr, a)) {
			memcpy(mac, cfg->neighbours[i].mac, 6);
			return 1;
		}
	}
	return 0;
}

/* ---- Forwarding spec ---- */

int config_to_spec(const struct fulcrum_config *cfg, uint64_t revision, const uint8_t port_mac[6],
		   const uint8_t gateway_mac[6],
		   int (*neigh)(void *ctx, const struct addr *a, uint8_t mac[6]), void *ctx,
		   unsigned n_workers, struct fwd_spec *spec)
{
	size_t nb = 0, off;
	struct fwd_service_spec *svcs;
	struct fwd_backend_spec *bes;
	uint8_t *block;

	memset(spec, 0, sizeof(*spec));
	for (uint32_t i = 0; i < cfg->n_services; i++)
		nb += cfg->services[i].n_backends;
	/* One block, services then backends, so config_spec_free needs only spec->services. */
	off = (size_t)cfg->n_services * sizeof(*svcs);
	off = (off + _Alignof(struct fwd_backend_spec) - 1) / _Alignof(struct fwd_backend_spec) *
	      _Alignof(struct fwd_backend_spec);
	block = calloc(1, off + nb * sizeof(*bes) + 1);
	if (block == NULL)
		return -ENOMEM;
	svcs = (struct fwd_service_spec *)block;
	bes = (struct fwd_backend_spec *)(block + off);

	spec->revision = revision;
	spec->hash_seed = cfg->hash_seed;
	if (port_mac != NULL)
		memcpy(spec->port_mac, port_mac, 6);
	if (gateway_mac != NULL)
		memcpy(spec->gateway_mac, gateway_mac, 6);
	spec->node_v4 = cfg->node_v4;
	spec->node_v6 = cfg->node_v6;
	spec->n_workers = n_workers != 0 ? n_workers : cfg->dp.workers;
	spec->n_services = cfg->n_services;
	spec->services = svcs;
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		struct fwd_service_spec *o = &svcs[i];

		o->vip = s->vip;
		o->port = s->port;
		o->proto = s->proto;
		o->mode = s->mode;
		o->announce = s->announce;
		o->table_size = s->table_size;
		o->n_backends = s->n_backends;
		o->backends = bes;
		for (uint32_t k = 0; k < s->n_backends; k++) {
			const struct cfg_backend *b = &s->backends[k];
			struct fwd_backend_spec *ob = bes++;

			ob->addr = b->addr;
			ob->port = b->port;
			ob->weight = b->weight;
			ob->uid = b->uid;
			if (neigh != NULL && neigh(ctx, &b->addr, ob->mac) == 1)
				ob->mac_ok = 1;
			else
				memset(ob->mac, 0, 6);
		}
	}
	return 0;
}

void config_spec_free(struct fwd_spec *spec)
{
	if (spec == NULL)
		return;
	free((void *)spec->services);
	memset(spec, 0, sizeof(*spec));
}

/* ---- Writing the effective config and the reference ---- */

static void write_string(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void write_indent(FILE *f, int depth)
{
	for (int i = 0; i < depth; i++)
		fputc('\t', f);
}

static void write_group(FILE *f, const struct schema *sc, const uint8_t *base, int depth);

static void write_opt(FILE *f, const struct opt *o, const uint8_t *base, int depth)
{
	const uint8_t *p = base + o->off;
	char buf[ADDR_STRLEN];

	write_indent(f, depth);
	fprintf(f, "%s = ", o->name);
	switch (o->type) {
	case OT_STR:
	case OT_NAME:
	case OT_HOSTPORT:
		write_string(f, (const char *)p);
		break;
	case OT_UINT:
		fprintf(f, "%llu", (unsigned long long)load_uint(p, o->size));
		break;
	case OT_BOOL: {
		bool v;
		memcpy(&v, p, sizeof(v));
		fputs(v ? "true" : "false", f);
		break;
	}
	case OT_ENUM: {
		uint64_t v = load_uint(p, o->size);
		const char *name = "?";
		for (const struct opt_name *e = o->names; e->name != NULL; e++)
			if ((uint64_t)e->value == v)
				name = e->name;
		write_string(f, name);
		break;
	}
	case OT_ADDR: {
		struct addr a;
		memcpy(&a, p, sizeof(a));
		write_string(f, a.family == ADDR_NONE ? "" : addr_format(&a, buf, sizeof(buf)));
		break;
	}
	case OT_MAC:
		fprintf(f, "\"%02x:%02x:%02x:%02x:%02x:%02x\"", p[0], p[1], p[2], p[3], p[4], p[5]);
		break;
	case OT_SECONDS: {
		uint64_t ns;
		memcpy(&ns, p, sizeof(ns));
		if (ns % NS_PER_S == 0)
			fprintf(f, "%llu", (unsigned long long)(ns / NS_PER_S));
		else
			fprintf(f, "%llu.%09llu", (unsigned long long)(ns / NS_PER_S),
				(unsigned long long)(ns % NS_PER_S));
		break;
	}
	case OT_SEED: {
		uint64_t v;
		memcpy(&v, p, sizeof(v));
		fprintf(f, "\"0x%016llx\"", (unsigned long long)v);
		break;
	}
	case OT_STRLIST: {
		unsigned n;
		memcpy(&n, base + o->off2, sizeof(n));
		fputc('[', f);
		for (unsigned i = 0; i < n; i++) {
			fputs(i ? ", " : " ", f);
			write_string(f, (const char *)p + (size_t)i * o->size);
		}
		fputs(n ? " ]" : "]", f);
		break;
	}
	case OT_RANGE:
		fprintf(f, "[%llu, %llu]", (unsigned long long)load_uint(p, 2),
			(unsigned long long)load_uint(base + o->off2, 2));
		break;
	case OT_GROUP:
		fputs("{\n", f);
		write_group(f, o->sub, p, depth + 1);
		write_indent(f, depth);
		fputc('}', f);
		break;
	case OT_LIST: {
		const uint8_t *items;
		uint32_t n;
		memcpy(&items, p, sizeof(items));
		memcpy(&n, base + o->off2, sizeof(n));
		fputc('(', f);
		for (uint32_t i = 0; i < n; i++) {
			fputs(i ? ",\n" : "\n", f);
			write_indent(f, depth + 1);
			fputs("{\n", f);
			write_group(f, o->sub, items + (size_t)i * o->sub->item_size, depth + 2);
			write_indent(f, depth + 1);
			fputc('}', f);
		}
		if (n > 0) {
			fputc('\n', f);
			write_indent(f, depth);
		}
		fputc(')', f);
		break;
	}
	}
	fputs(";\n", f);
}

static void write_group(FILE *f, const struct schema *sc, const uint8_t *base, int depth)
{
	for (size_t i = 0; i < sc->n_opts; i++) {
		const struct opt *o = &sc->opts[i];
		bool on = true;
		if (o->type == OT_GROUP && (o->flags & OF_PRESENCE))
			memcpy(&on, base + o->off2, sizeof(on));
		if (on)
			write_opt(f, o, base, depth);
	}
}

int config_dump(const struct fulcrum_config *cfg, FILE *f)
{
	fputs("# fulcrumd configuration as loaded from ", f);
	/* Only printable bytes: a newline in the path must not end the comment. */
	for (const char *p = cfg->path; *p != '\0'; p++)
		fputc(*p >= 0x20 && *p != 0x7f ? *p : '?', f);
	fputs(" (every setting, defaults included)\n", f);
	write_group(f, &root_schema, (const uint8_t *)cfg, 0);
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* Markdown table cells must not contain '|'. */
static void write_cell(FILE *f, const char *s, int code)
{
	fputs(code ? " `" : " ", f);
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else
			fputc(*s, f);
	}
	fputs(code ? "` |" : " |", f);
}

static void write_reference(FILE *f, const struct schema *sc, const char *path)
{
	char ex[256], op[CFG_PATH_MAX];

	fprintf(f, "### %s%s%s\n\n%s\n\n", path[0] ? "`" : "", path[0] ? sc->what : "Top level",
		path[0] ? "`" : "", sc->help);
	fprintf(f, "| Setting | Type and bounds | Default | Meaning |\n");
	fprintf(f, "|---|---|---|---|\n");
	for (size_t i = 0; i < sc->n_opts; i++) {
		const struct opt *o = &sc->opts[i];
		path_member(op, path, o->name);
		expected(o, ex, sizeof(ex));
		fputc('|', f);
		write_cell(f, op, 1);
		write_cell(f, ex, 0);
		if (o->type == OT_GROUP && (o->flags & OF_PRESENCE))
			write_cell(f, "absent (single node)", 0);
		else if (o->type == OT_GROUP)
			write_cell(f, "its settings' defaults", 0);
		else if (o->type == OT_LIST)
			write_cell(f, "()", 1);
		else
			write_cell(f, o->def != NULL ? o->def : "required", o->def != NULL);
		write_cell(f, o->help, 0);
		fputc('\n', f);
	}
	fputc('\n', f);
	for (size_t i = 0; i < sc->n_opts; i++) {
		const struct opt *o = &sc->opts[i];
		if (o->type == OT_GROUP || o->type == OT_LIST)
			write_reference(f, o->sub, o->sub->what);
	}
}

int config_dump_reference(FILE *f)
{
	write_reference(f, &root_schema, "");
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
