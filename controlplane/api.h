/* api: the HTTP/JSON control API of a node (evhttp + jansson); see docs/api.md. */
#ifndef FULCRUM_CONTROLPLANE_API_H
#define FULCRUM_CONTROLPLANE_API_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/node.h"
#include "controlplane/sm.h"

/*
 * CONTRACT
 *
 * Threads: a struct api lives on one event_base; every api_* call and every
 * api_backend op runs on the thread running that base's loop (the control
 * thread, the same one as the node).
 *
 * The API never touches Raft or the state machine directly: it goes through
 * struct api_backend, which the daemon implements over node_* + sm_* and the
 * unit test implements as a fake single node. The API owns the leader's lease
 * tracker (controlplane/lease.h): while the backend reports this node as
 * leader it tracks deadlines, answers keepalives and proposes expiries.
 *
 * Errors: functions return 0 or a negative errno value.
 */

struct event_base;
struct api;

/* How a proposal / read / membership change ended (the backend fills it). */
struct api_commit {
	enum node_rc rc;      /* NODE_OK: committed and applied here / read may proceed */
	uint64_t index;	      /* log index of the entry (proposals) */
	enum sm_errcode code; /* proposals with rc NODE_OK: sm_apply's verdict (SM_ERR_OK: took
				 effect); the daemon's node_app.apply returns it as app_result */
};

typedef void (*api_done_fn)(void *dctx, const struct api_commit *c);

enum api_member_op {
	API_MEMBER_ADD_LEARNER = 1,
	API_MEMBER_PROMOTE = 2,
	API_MEMBER_REMOVE = 3,
};

/*
 * What the API needs from the node. Ops that take done: return 0 and call
 * done exactly once LATER (never from inside the op), or return a negative
 * errno and never call it: -EPERM this node is not the leader; for member:
 * -EBUSY/-EAGAIN/-EINPROGRESS (another change running, learner not caught up),
 * -ENOENT, -EEXIST, -ENOSPC, -EINVAL; anything else is reported as 500.
 */
struct api_backend {
	void *ctx;
	/* The replicated state as applied on this node (required). */
	const struct sm_state *(*state)(void *ctx);
	/* Raft's view: id, role, term, leader, commit, applied, members (required). */
	void (*info)(void *ctx, struct node_info *out);
	/* 1 if this node leads now (optional: NULL = from info(), which costs far more:
	 * every write asks). */
	int (*is_leader)(void *ctx);
	/* node_propose of an encoded sm command (required). */
	int (*propose)(void *ctx, const uint8_t *data, uint32_t len, api_done_fn done, void *dctx);
	/* node_read_index (required). */
	int (*read_index)(void *ctx, api_done_fn done, void *dctx);
	/* node_add_learner(id, raft_addr) / node_promote(id) / node_remove(id) (required). */
	int (*member)(void *ctx, enum api_member_op op, uint64_t id, const char *raft_addr,
		      api_done_fn done, void *dctx);
	/* Digest of this node's forwarding (Maglev) tables for /v1/status; 0 and *out, or
	 * negative when not available (optional: NULL). */
	int (*forwarding_digest)(void *ctx, uint64_t *out);
	/* Monotonic milliseconds (optional: NULL = CLOCK_MONOTONIC). */
	uint64_t (*now_ms)(void *ctx);
};

/* A bearer token and what it may do (docs/api.md "Auth"). */
struct api_token {
	const char *token; /* the secret, compared in constant time */
	int admin;	   /* 1: everything; 0: registration token scoped to services[] */
	const char *const *services;
	size_t n_services;
};

/* A member's API address known from configuration, used to forward to the leader while the
 * replicated member table does not name it yet (bootstrap). */
struct api_peer {
	uint64_t id;
	const char *api_addr; /* "host:port", numeric host */
};

/* Settings. Zero fields take the default in brackets. Copied by api_start(). */
struct api_config {
	const char *listen; /* "ip:port" (port 0: any, see api_port()) ["127.0.0.1:8080"] */
	const struct api_token *tokens; /* none (n_tokens 0): the API is open, loopback use only */
	size_t n_tokens;
	const struct api_peer *peers;
	size_t n_peers;
	size_t max_body;	     /* request body bytes [65536] */
	size_t max_headers;	     /* request header bytes [8192] */
	uint32_t forward_timeout_ms; /* forwarding to the leader [5000] */
	uint32_t max_wait_ms;	     /* long-poll upper bound [300000] */
	uint32_t tick_ms;	     /* lease expiry / role check period [50] */
};

/*
 * Binds cfg->listen and starts serving on base; *out is owned by the caller
 * (api_free). The backend struct is copied; its ctx must outlive the api.
 * -EINVAL bad config or address; -EADDRINUSE / other errno from bind; -ENOMEM.
 */
int api_start(struct event_base *base, const struct api_config *cfg,
	      const struct api_backend *backend, struct api **out);

/* The bound TCP port (useful with port 0). */
uint16_t api_port(const struct api *api);

/*
 * Tell the API that entries were applied or the role/leader changed. Wakes
 * long-poll waiters whose service changed and syncs the lease tracker. The
 * API also checks every tick_ms, so calling this only lowers latency.
 */
void api_notify(struct api *api);

/*
 * Stops serving and frees. Requests still waiting get 503. Requests whose
 * backend op is still pending are detached: their done callback may still
 * come later and is then harmless, so the backend must still call it (or
 * never, if it is destroyed first). Forwarded requests in flight must have
 * completed (or the base is about to be freed). NULL is a no-op.
 */
void api_free(struct api *api);

#endif
