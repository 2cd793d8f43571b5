/* sm: the replicated state machine (services, backends, leases, seed, members) and its commands. */
#ifndef FULCRUM_CONTROLPLANE_SM_H
#define FULCRUM_CONTROLPLANE_SM_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/addr.h"
#include "dataplane/fwd.h"

/*
 * Every node applies the same committed Raft log to its own struct sm_state,
 * so every node holds the same state at the same revision (the Raft index of
 * the last applied entry) and builds the same forwarding state from it
 * (sm_to_spec). Nothing here reads a clock, a random source or a socket:
 * the outcome of sm_apply depends only on the state, the index and the bytes.
 *
 * Threads: a state belongs to the control thread; every function below runs
 * there (or on any single thread that owns the state). Read-only functions
 * may run concurrently with each other, never with sm_apply/sm_restore.
 * Pointers returned by queries stay valid until the next sm_apply,
 * sm_restore or sm_free on that state.
 *
 * Errors: functions returning int return 0 (or a count) or a negative errno.
 * Command-level problems (what the API reports as 4xx) are enum sm_errcode
 * values with a message, never errno values.
 */

#define SM_NAME_MAX	64   /* service name incl. NUL: [A-Za-z0-9._-]{1,63} */
#define SM_PATH_MAX	128  /* health-check HTTP path incl. NUL */
#define SM_HOSTPORT_MAX 64   /* member address "host:port" incl. NUL */
#define SM_MAX_SERVICES 1024 /* = CFG_MAX_SERVICES */
#define SM_MAX_BACKENDS 4096 /* per service, = CFG_MAX_BACKENDS */
#define SM_MAX_LEASES	16384
#define SM_MAX_MEMBERS	64
#define SM_EXPIRE_MAX	256 /* leases per expiry command */
#define SM_WEIGHT_MAX	1000000u
#define SM_TTL_MIN_MS	1000u
#define SM_TTL_MAX_MS	3600000u
#define SM_CMD_MAX_LEN	8192 /* an encoded command never exceeds this */

/* Stable error codes: the API maps them to HTTP statuses and prints the string. */
#define SM_ERRCODES(X)                                                                             \
	X(OK, "ok")		  /* applied */                                                    \
	X(INVALID, "invalid")	  /* a field is out of range or inconsistent (400) */              \
	X(NOT_FOUND, "not_found") /* the service, backend, lease or member is absent (404) */      \
	X(EXISTS, "exists")	  /* it already exists (409) */                                    \
	X(CONFLICT, "conflict")	  /* clashes with another object, e.g. VIP:port/proto (409) */     \
	X(LIMIT, "limit")	  /* a capacity limit would be exceeded (409/507) */               \
	X(DECODE, "decode")	  /* the bytes are not a command this version understands (400) */

enum sm_errcode {
#define SM_X(name, str) SM_ERR_##name,
	SM_ERRCODES(SM_X)
#undef SM_X
	    SM_ERR__COUNT
};

/* "ok", "invalid", ... ; "?" when out of range. Pure; any thread. */
const char *sm_errcode_str(unsigned code);

struct sm_err {
	enum sm_errcode code;
	char msg[192]; /* one line naming the object, e.g. "service \"web\": not found" */
};

/* ---- The state's objects (read-only to callers) ---- */

enum sm_hc_type {
	SM_HC_NONE = 0, /* no health checks: backends stay as set */
	SM_HC_TCP = 1,	/* TCP connect */
	SM_HC_HTTP = 2, /* HTTP GET path, 2xx/3xx = healthy */
};

struct sm_health {
	uint8_t type;		/* enum sm_hc_type */
	char path[SM_PATH_MAX]; /* http: '/...', printable, no spaces; else "" */
	uint32_t interval_ms;	/* 100 .. 3600000 (0 when type is none) */
	uint32_t timeout_ms;	/* 1 .. interval_ms */
	uint8_t rise;		/* successes to become healthy, 1 .. 100 */
	uint8_t fall;		/* failures to become unhealthy, 1 .. 100 */
};

enum sm_algorithm {
	SM_ALG_MAGLEV =
	    1, /* the only one for now; the field exists so adding one is not a format change */
};

/* What an operator specifies for a service (create and update carry this whole). */
struct sm_service_def {
	char name[SM_NAME_MAX]; /* key; never changes */
	struct addr vip;
	uint16_t port;	       /* 1 .. 65535 */
	uint8_t proto;	       /* IPPROTO_TCP / IPPROTO_UDP */
	uint8_t mode;	       /* enum fwd_mode */
	uint8_t announce;      /* 0/1: answer ARP/ND for the VIP */
	uint8_t algorithm;     /* enum sm_algorithm */
	uint32_t table_size;   /* Maglev M, prime; 0 in a command = MAGLEV_DEFAULT_SIZE (stored
				  resolved) */
	uint32_t max_backends; /* optional limit; 0 = SM_MAX_BACKENDS */
	struct sm_health health;
};

enum sm_backend_state {
	SM_BACKEND_ACTIVE = 0,	 /* healthy and not draining: gets new flows by weight */
	SM_BACKEND_DRAINING = 1, /* keeps its flows, weight 0 for new ones */
	SM_BACKEND_DOWN = 2,	 /* health checks failed: out of the forwarding state */
};

struct sm_backend {
	uint32_t uid; /* config_backend_uid(addr, port): the backend's id everywhere */
	struct addr addr;
	uint16_t port;	  /* resolved: never 0 */
	uint32_t weight;  /* configured weight, 0 .. SM_WEIGHT_MAX (kept while draining) */
	uint8_t draining; /* operator drain (admin), independent of health */
	uint8_t down;	  /* last committed health verdict */
	uint64_t lease;	  /* owning lease id, 0 = static */
	uint64_t created; /* revision of the register that created it */
};

struct sm_service {
	struct sm_service_def def;
	uint64_t created;  /* revision */
	uint64_t modified; /* revision of the last change to it or its backends */
	uint32_t n_backends;
	uint32_t cap_backends;	     /* allocated entries of backends[] */
	struct sm_backend *backends; /* sorted by uid */
};

struct sm_lease {
	uint64_t id; /* the Raft index of the grant that created it: unique, never reused */
	uint32_t ttl_ms;
	char service[SM_NAME_MAX]; /* scope: only backends of this service may use it */
	uint64_t granted;	   /* revision of the creating grant (= id) */
	uint64_t renewed; /* revision of the last logged grant/renew; an expiry must name it */
};

struct sm_member {
	uint64_t id;			 /* Raft node id, != 0 */
	char raft_addr[SM_HOSTPORT_MAX]; /* "host:port" */
	char api_addr[SM_HOSTPORT_MAX];
};

/* Effective state: down wins over draining. */
enum sm_backend_state sm_backend_state(const struct sm_backend *b);

/* ---- Commands (one per log entry) ---- */

enum sm_cmd_type {
	SM_CMD_SERVICE_CREATE = 1,
	SM_CMD_SERVICE_UPDATE = 2, /* replaces the whole definition (not the backends) */
	SM_CMD_SERVICE_DELETE = 3, /* also removes its backends and the leases scoped to it */
	SM_CMD_BACKEND_REGISTER =
	    4, /* creates, or re-registers an existing (addr, port): see docs */
	SM_CMD_BACKEND_WEIGHT = 5,
	SM_CMD_BACKEND_DRAIN = 6,  /* on = 1 drain, on = 0 undrain */
	SM_CMD_BACKEND_HEALTH = 7, /* state SM_BACKEND_ACTIVE or SM_BACKEND_DOWN */
	SM_CMD_BACKEND_DEREGISTER = 8,
	SM_CMD_LEASE_GRANT = 9,	   /* lease 0: new lease; lease != 0: renew an existing one */
	SM_CMD_LEASE_REVOKE = 10,  /* removes the lease and its backends */
	SM_CMD_LEASE_EXPIRE = 11,  /* batch; each applies only if still unrenewed */
	SM_CMD_SET_HASH_SEED = 12, /* once per cluster */
	SM_CMD_MEMBER_ADD = 13,
	SM_CMD_MEMBER_REMOVE = 14,
};

struct sm_lease_ref {
	uint64_t id;
	uint64_t renewed; /* the lease's renewed revision the leader saw when it decided */
};

struct sm_cmd {
	uint8_t type; /* enum sm_cmd_type */
	union {
		struct sm_service_def service; /* CREATE, UPDATE */
		struct {
			char service[SM_NAME_MAX];
		} del; /* SERVICE_DELETE */
		struct {
			char service[SM_NAME_MAX];
			struct addr addr;
			uint16_t port; /* 0 = the service port */
			uint32_t weight;
			uint64_t lease; /* 0 = static */
		} reg;			/* BACKEND_REGISTER */
		struct {
			char service[SM_NAME_MAX];
			uint32_t uid;
			uint32_t
			    value; /* WEIGHT: weight; DRAIN: 0/1; HEALTH: enum sm_backend_state */
		} be;		   /* BACKEND_WEIGHT, _DRAIN, _HEALTH, _DEREGISTER (value unused) */
		struct {
			uint64_t id;		   /* GRANT: 0 = new; REVOKE: the lease */
			uint32_t ttl_ms;	   /* GRANT */
			char service[SM_NAME_MAX]; /* GRANT of a new lease: its scope */
		} lease;
		struct {
			uint32_t n;
			struct sm_lease_ref refs[SM_EXPIRE_MAX];
		} expire;
		uint64_t seed;		 /* SET_HASH_SEED */
		struct sm_member member; /* MEMBER_ADD; MEMBER_REMOVE uses member.id only */
	} u;
};

/*
 * Encode cmd into buf (version 1, little-endian, length-prefixed strings).
 * Returns the length (<= SM_CMD_MAX_LEN), -ENOSPC if cap is too small, or
 * -EINVAL if cmd has an unknown type or a string without NUL within bounds.
 * Encoding does not validate semantics (sm_validate does). Pure; any thread.
 */
int sm_cmd_encode(const struct sm_cmd *cmd, uint8_t *buf, size_t cap);

/*
 * Decode len bytes (untrusted) into *cmd (zeroed first). Every length is
 * checked; trailing bytes, unknown versions/types/enum values and strings
 * with NUL or over their bound are refused. Returns 0 or -EINVAL. Never
 * reads outside buf. Pure; any thread.
 */
int sm_cmd_decode(const uint8_t *buf, size_t len, struct sm_cmd *cmd);

/* ---- State ---- */

struct sm_state;

/* A new empty state at revision 0 (no services, seed unset). NULL on ENOMEM. */
struct sm_state *sm_new(void);
/* Free it and everything it holds. NULL is fine. */
void sm_free(struct sm_state *st);

/*
 * Would cmd succeed on st now? Fills err (code and message) and returns the
 * code (SM_ERR_OK = 0). The leader calls it before proposing, so a bad
 * request gets a 4xx and no log entry. Read-only.
 */
enum sm_errcode sm_validate(const struct sm_state *st, const struct sm_cmd *cmd,
			    struct sm_err *err);

struct sm_result {
	enum sm_errcode code; /* SM_ERR_OK, or why the committed command was a no-op */
	char msg[192];
	uint64_t revision; /* = the index applied */
	uint32_t uid;	   /* REGISTER: the backend's id */
	uint8_t created;   /* REGISTER: 1 new backend, 0 re-registered; CREATE: 1 */
	uint64_t lease;	   /* GRANT: the lease id */
	uint32_t count;	   /* EXPIRE: leases removed; SERVICE_DELETE: leases removed with it */
	uint32_t removed;  /* backends removed (DEREGISTER, REVOKE, EXPIRE, SERVICE_DELETE) */
};

/*
 * Apply the committed RAFT_ENTRY_NORMAL entry at index (bytes owned by the
 * caller). The command is decoded and validated again (the state may have
 * changed since the leader validated it): an invalid or undecodable command
 * changes nothing but the revision, and res (may be NULL) says why. Returns:
 *   0       applied (res->code tells whether the command took effect);
 *   -EINVAL index <= the current revision (the caller's bug; nothing changed);
 *   -ENOMEM out of memory (nothing changed, not even the revision: the node
 *           must not go on, or it would diverge from the others).
 */
int sm_apply(struct sm_state *st, uint64_t index, const uint8_t *bytes, size_t len,
	     struct sm_result *res);

/*
 * Advance the revision over an entry that is not a command (RAFT_ENTRY_NOOP,
 * RAFT_ENTRY_CONF), so the revision is always the last applied index.
 * 0, or -EINVAL if index <= the revision.
 */
int sm_advance(struct sm_state *st, uint64_t index);

/*
 * Serialise the whole state (version 1, canonical: same state = same bytes).
 * *bytes is malloc'd, the caller frees it. 0 or -ENOMEM.
 */
int sm_snapshot(const struct sm_state *st, uint8_t **bytes, size_t *len);

/*
 * Replace st's contents with a snapshot (untrusted bytes: every length,
 * range, order and cross-reference is checked; never reads outside them).
 * On error st is unchanged. 0, -EINVAL (not a valid snapshot) or -ENOMEM.
 */
int sm_restore(struct sm_state *st, const uint8_t *bytes, size_t len);

/*
 * 64-bit digest of the canonical serialisation (the snapshot bytes): equal
 * states give equal digests on every host. Allocates nothing.
 */
uint64_t sm_digest(const struct sm_state *st);

/* ---- Queries (read-only) ---- */

uint64_t sm_revision(const struct sm_state *st);
/* 1 and *seed when the cluster seed was set, else 0. */
int sm_hash_seed(const struct sm_state *st, uint64_t *seed);

uint32_t sm_service_count(const struct sm_state *st);
/* i-th service in name order, or NULL if i is out of range. */
const struct sm_service *sm_service_at(const struct sm_state *st, uint32_t i);
/* The service by name, or NULL. */
const struct sm_service *sm_service_get(const struct sm_state *st, const char *name);
/* A backend of a service by uid, or NULL. */
const struct sm_backend *sm_backend_get(const struct sm_service *svc, uint32_t uid);

/* Filters for sm_backend_list. */
#define SM_FILTER_HEALTHY 1u /* only backends in state active (what new flows may reach) */

/*
 * Copy up to cap pointers to the service's backends that pass filter (uid
 * order) into out (may be NULL when cap is 0). Returns how many pass (may be
 * more than cap: call again with a larger array), or -ENOENT if there is no
 * such service.
 */
int sm_backend_list(const struct sm_state *st, const char *service, unsigned filter,
		    const struct sm_backend **out, uint32_t cap);

/* A discovery endpoint: what a client needs to reach one backend. */
struct sm_endpoint {
	struct addr addr;
	uint16_t port;
	uint32_t weight; /* effective: 0 when draining */
	uint32_t uid;
	uint8_t state; /* enum sm_backend_state */
};

/* As sm_backend_list, filled as endpoints. */
int sm_endpoints(const struct sm_state *st, const char *service, unsigned filter,
		 struct sm_endpoint *out, uint32_t cap);

uint32_t sm_lease_count(const struct sm_state *st);
const struct sm_lease *sm_lease_at(const struct sm_state *st, uint32_t i); /* id order */
const struct sm_lease *sm_lease_get(const struct sm_state *st, uint64_t id);

uint32_t sm_member_count(const struct sm_state *st);
const struct sm_member *sm_member_at(const struct sm_state *st, uint32_t i); /* id order */
const struct sm_member *sm_member_get(const struct sm_state *st, uint64_t id);

/* ---- Forwarding state ---- */

/* What differs between nodes: none of it is replicated. */
struct sm_node_params {
	uint8_t port_mac[6];
	uint8_t gateway_mac[6]; /* all zero = unresolved */
	struct addr node_v4;	/* may be ADDR_NONE */
	struct addr node_v6;
	/* backend MAC lookup: 1 and mac when resolved, else 0; NULL = none resolved */
	int (*neigh)(void *ctx, const struct addr *a, uint8_t mac[6]);
	void *neigh_ctx;
	unsigned n_workers; /* >= 1 */
	uint32_t *skipped;  /* out, optional: services this node cannot serve (sm_to_spec) */
};

/*
 * Fill spec for fwd_state_build from st at its revision: every service in
 * name order, backends in uid order, down backends left out, draining ones
 * at weight 0, hash seed (0 when unset). Built through config_to_spec so the
 * two paths cannot drift. A service this node cannot serve is left out and
 * counted in *node->skipped: nat needs a node address of the VIP's family,
 * tunnel an IPv4 one, and those are each node's own settings, which the
 * replicated state cannot check; one such service must not stop every
 * other service's updates on this node (fwd_state_build would refuse the
 * whole state). Allocates: release with sm_spec_free. *spec is zeroed
 * first. 0, -EINVAL (n_workers 0) or -ENOMEM. Read-only on st.
 */
int sm_to_spec(const struct sm_state *st, const struct sm_node_params *node, struct fwd_spec *spec);
void sm_spec_free(struct fwd_spec *spec);

#endif
