/* cluster: glue between the Raft node runner, the replicated state machine, the API and fulcrumd. */
#include "controlplane/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "controlplane/log.h"
#include "dataplane/hash.h"
#include "dataplane/maglev.h"

#define DIGEST_SEED	     0x666f727764696765ULL /* fixed: digests compare across nodes */
#define BOOTSTRAP_RETRY_MS   500

struct cluster {
	const struct fulcrum_config *cfg;
	struct cluster_hooks hooks;
	struct event_base *base;
	struct sm_state *sm;
	struct node *node;
	int fatal; /* apply hit ENOMEM: the node must not go on (it would diverge) */
	/* bootstrap */
	int boot_busy;		/* a ReadIndex or proposals are outstanding */
	unsigned boot_pending;	/* proposals not yet answered */
	uint64_t boot_next_ms;	/* not before this */
	uint64_t boot_rounds;
	/* forwarding */
	int fwd_known;
	uint64_t fwd_revision, fwd_digest;
	int stopped;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- node_app ---- */

static int app_apply(void *ctx, uint64_t index, uint8_t type, const void *data, uint32_t len)
{
	struct cluster *c = ctx;
	struct sm_result res;
	int rc;

	if (type != RAFT_ENTRY_NORMAL) {
		rc = sm_advance(c->sm, index);
		if (rc != 0)
			log_error("cluster: revision %" PRIu64 " out of order (at %" PRIu64 ")", index,
				  sm_revision(c->sm));
		return SM_ERR_OK;
	}
	rc = sm_apply(c->sm, index, data, len, &res);
	if (rc == -ENOMEM) {
		/* Skipping the entry would make this node diverge: stop instead (docs/cluster.md). */
		c->fatal = 1;
		log_error("cluster: out of memory applying entry %" PRIu64 "; stopping", index);
		return SM_ERR_INVALID;
	}
	if (rc != 0) {
		log_error("cluster: entry %" PRIu64 " not applied: %s", index, strerror(-rc));
		return SM_ERR_INVALID;
	}
	if (res.code != SM_ERR_OK)
		log_debug("cluster: entry %" PRIu64 " was a no-op: %s", index, res.msg);
	return (int)res.code;
}

static int app_snapshot(void *ctx, uint8_t **data, size_t *len)
{
	struct cluster *c = ctx;
	return sm_snapshot(c->sm, data, len);
}

static int app_restore(void *ctx, uint64_t index, const void *data, size_t len)
{
	struct cluster *c = ctx;
	int rc = sm_restore(c->sm, data, len);

	if (rc == 0 && sm_revision(c->sm) != index)
		log_warn("cluster: snapshot at index %" PRIu64 " carries revision %" PRIu64, index,
			 sm_revision(c->sm));
	if (rc == 0)
		log_info("cluster: state restored from a snapshot at revision %" PRIu64,
			 sm_revision(c->sm));
	return rc;
}

static int app_resolve(void *ctx, raft_id id, char *buf, size_t len)
{
	struct cluster *c = ctx;
	const struct sm_member *m = sm_member_get(c->sm, id);

	if (m == NULL || m->raft_addr[0] == '\0' || strlen(m->raft_addr) >= len)
		return -ENOENT;
	memcpy(buf, m->raft_addr, strlen(m->raft_addr) + 1);
	return 0;
}

static void app_stopped(void *ctx, enum node_stop_reason why, const char *msg)
{
	struct cluster *c = ctx;

	(void)why;
	c->stopped = 1;
	log_error("cluster: node stopped: %s", msg);
	if (c->hooks.stopped != NULL)
		c->hooks.stopped(c->hooks.ctx, msg);
}

static const char *role_name(enum raft_role r)
{
	switch (r) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "pre-candidate";
	}
}

static void app_role(void *ctx, enum raft_role role, uint64_t term, raft_id leader)
{
	struct cluster *c = ctx;

	log_info("cluster: %s in term %" PRIu64 ", leader %" PRIu64, role_name(role), term,
		 (uint64_t)leader);
	if (c->hooks.role != NULL)
		c->hooks.role(c->hooks.ctx);
}

/* ---- Bootstrap: seed a new cluster from the config file ---- */

static void boot_done(void *ctx, const struct node_result *res)
{
	struct cluster *c = ctx;

	if (res->rc != NODE_OK)
		log_info("cluster: bootstrap proposal at %" PRIu64 ": %s (retried if needed)",
			 res->index, node_rc_name(res->rc));
	if (c->boot_pending > 0 && --c->boot_pending == 0) {
		c->boot_busy = 0;
		c->boot_next_ms = now_ms() + BOOTSTRAP_RETRY_MS;
	}
}

static int boot_propose(struct cluster *c, const struct sm_cmd *cmd)
{
	uint8_t buf[SM_CMD_MAX_LEN];
	int n = sm_cmd_encode(cmd, buf, sizeof(buf));

	if (n < 0)
		return n;
	int rc = node_propose(c->node, buf, (uint32_t)n, boot_done, c);
	if (rc == 0)
		c->boot_pending++;
	return rc;
}

/* Members first, so every node can resolve every other one from the replicated table. */
static void boot_members(struct cluster *c)
{
	const struct cfg_cluster *cl = &c->cfg->cluster;
	struct sm_cmd cmd;
	struct sm_err e;

	memset(&cmd, 0, sizeof(cmd));
	cmd.type = SM_CMD_MEMBER_ADD;
	cmd.u.member.id = cl->id;
	snprintf(cmd.u.member.raft_addr, sizeof(cmd.u.member.raft_addr), "%s", cl->raft_listen);
	snprintf(cmd.u.member.api_addr, sizeof(cmd.u.member.api_addr), "%s", cl->api_listen);
	if (sm_validate(c->sm, &cmd, &e) == SM_ERR_OK)
		boot_propose(c, &cmd);
	for (uint32_t i = 0; i < cl->n_peers; i++) {
		if (config_peer_is_self(c->cfg, i))
			continue;
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = SM_CMD_MEMBER_ADD;
		cmd.u.member.id = cl->peers[i].id;
		snprintf(cmd.u.member.raft_addr, sizeof(cmd.u.member.raft_addr), "%s",
			 cl->peers[i].raft);
		snprintf(cmd.u.member.api_addr, sizeof(cmd.u.member.api_addr), "%s",
			 cl->peers[i].api);
		if (sm_validate(c->sm, &cmd, &e) == SM_ERR_OK)
			boot_propose(c, &cmd);
		else if (e.code != SM_ERR_EXISTS)
			log_warn("cluster: bootstrap: member %" PRIu64 ": %s", cl->peers[i].id, e.msg);
	}
}

static void boot_read_done(void *ctx, const struct node_result *res)
{
	struct cluster *c = ctx;
	const struct fulcrum_config *cfg = c->cfg;
	struct sm_cmd cmd;
	struct sm_err e;
	uint64_t seed;
	unsigned nb = 0;

	c->boot_busy = 0;
	c->boot_next_ms = now_ms() + BOOTSTRAP_RETRY_MS;
	/* Decide on state applied up to the read index: everything committed before this term's
	 * leader took over is in it, so "no seed" really means "never bootstrapped". */
	if (res->rc != NODE_OK || sm_hash_seed(c->sm, &seed) == 1 || c->stopped)
		return;
	c->boot_busy = 1;
	c->boot_rounds++;
	boot_members(c);
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];

		memset(&cmd, 0, sizeof(cmd));
		cmd.type = SM_CMD_SERVICE_CREATE;
		snprintf(cmd.u.service.name, sizeof(cmd.u.service.name), "%s", s->name);
		cmd.u.service.vip = s->vip;
		cmd.u.service.port = s->port;
		cmd.u.service.proto = s->proto;
		cmd.u.service.mode = s->mode;
		cmd.u.service.announce = s->announce;
		cmd.u.service.algorithm = SM_ALG_MAGLEV;
		cmd.u.service.table_size = s->table_size;
		if (sm_validate(c->sm, &cmd, &e) == SM_ERR_OK)
			boot_propose(c, &cmd);
		else if (e.code != SM_ERR_EXISTS)
			log_warn("cluster: bootstrap: service %s: %s", s->name, e.msg);
		/*
		 * Registers cannot be validated before the create above has applied;
		 * apply validates them. Re-registering an existing (address, port)
		 * with the same weight changes nothing, so a retried bootstrap is
		 * harmless.
		 */
		for (uint32_t j = 0; j < s->n_backends; j++) {
			memset(&cmd, 0, sizeof(cmd));
			cmd.type = SM_CMD_BACKEND_REGISTER;
			snprintf(cmd.u.reg.service, sizeof(cmd.u.reg.service), "%s", s->name);
			cmd.u.reg.addr = s->backends[j].addr;
			cmd.u.reg.port = s->backends[j].port;
			cmd.u.reg.weight = s->backends[j].weight;
			if (boot_propose(c, &cmd) == 0)
				nb++;
		}
	}
	/* The seed last: its commit is the mark that the cluster was seeded completely. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = SM_CMD_SET_HASH_SEED;
	cmd.u.seed = cfg->hash_seed;
	boot_propose(c, &cmd);
	log_info("cluster: bootstrap (round %" PRIu64 "): proposed %u entries (%u services, %u "
		 "backends from %s, then hash seed 0x%016" PRIx64 ")",
		 c->boot_rounds, c->boot_pending, cfg->n_services, nb, cfg->path, cfg->hash_seed);
	if (c->boot_pending == 0)
		c->boot_busy = 0;
}

void cluster_tick(struct cluster *c)
{
	uint64_t seed;

	if (c->fatal && !c->stopped) {
		c->stopped = 1;
		if (c->hooks.stopped != NULL)
			c->hooks.stopped(c->hooks.ctx, "out of memory applying a committed entry");
		return;
	}
	if (c->stopped || c->boot_busy || sm_hash_seed(c->sm, &seed) == 1)
		return;
	if (node_leader(c->node) != c->cfg->cluster.id || now_ms() < c->boot_next_ms)
		return;
	if (node_read_index(c->node, boot_read_done, c) == 0)
		c->boot_busy = 1;
	else
		c->boot_next_ms = now_ms() + BOOTSTRAP_RETRY_MS;
}

/* ---- Start / stop ---- */

/* mkdir -p of dir's parents (the storage creates dir itself). 0 or a negative errno. */
static int make_parents(const char *dir)
{
	char p[CFG_DIR_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

int cluster_start(struct event_base *base, const struct fulcrum_config *cfg,
		  const struct cluster_hooks *hooks, struct cluster **out, char *err,
		  size_t errlen)
{
	const struct cfg_cluster *cl = &cfg->cluster;
	struct node_peer peers[CFG_MAX_PEERS];
	struct node_config nc;
	struct node_app app;
	struct cluster *c;
	size_t np = 0;
	int rc;

	*out = NULL;
	if (!cl->enabled) {
		snprintf(err, errlen, "no cluster section");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->sm = sm_new()) == NULL) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = make_parents(cl->data_dir);
	if (rc != 0) {
		snprintf(err, errlen, "data_dir %s: %s", cl->data_dir, strerror(-rc));
		sm_free(c->sm);
		free(c);
		return rc;
	}
	c->cfg = cfg;
	c->base = base;
	if (hooks != NULL)
		c->hooks = *hooks;
	for (uint32_t i = 0; i < cl->n_peers && np < CFG_MAX_PEERS; i++) {
		if (config_peer_is_self(cfg, i))
			continue;
		peers[np].id = cl->peers[i].id;
		peers[np].addr = cl->peers[i].raft;
		np++;
	}
	memset(&nc, 0, sizeof(nc));
	nc.id = cl->id;
	nc.cluster_id = cl->cluster_id;
	nc.data_dir = cl->data_dir;
	nc.raft_listen = cl->raft_listen;
	nc.peers = peers;
	nc.n_peers = np;
	nc.bootstrap = cl->bootstrap;
	nc.tick_ms = cl->tick_ms;
	nc.heartbeat_ms = cl->heartbeat_ms;
	nc.election_min_ms = cl->election_min_ms;
	nc.election_max_ms = 2 * cl->election_min_ms;
	nc.snapshot_every = cl->snapshot_every;
	/* Each node its own election PRNG stream; the id alone would be the same after every
	 * restart, which is fine for Raft but the process start time spreads ties better. */
	nc.seed = cl->id * 0x9e3779b97f4a7c15ULL ^ now_ms();
	memset(&app, 0, sizeof(app));
	app.ctx = c;
	app.apply = app_apply;
	app.snapshot = app_snapshot;
	app.restore = app_restore;
	app.resolve = app_resolve;
	app.stopped = app_stopped;
	app.role = app_role;
	rc = node_start(base, &nc, &app, &c->node, err, errlen);
	if (rc != 0) {
		sm_free(c->sm);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

const struct sm_state *cluster_state(const struct cluster *c)
{
	return c->sm;
}

struct node *cluster_node(struct cluster *c)
{
	return c->node;
}

int cluster_seeded(const struct cluster *c)
{
	uint64_t seed;
	return sm_hash_seed(c->sm, &seed) == 1;
}

void cluster_stop(struct cluster *c)
{
	if (c != NULL && c->node != NULL)
		node_stop(c->node);
}

void cluster_free(struct cluster *c)
{
	if (c == NULL)
		return;
	node_free(c->node);
	sm_free(c->sm);
	free(c);
}

/* ---- Forwarding digest ---- */

uint64_t cluster_fwd_digest(const struct fwd_state *st)
{
	uint64_t h = DIGEST_SEED;

	h = hash_step(h, st->revision);
	h = hash_step(h, st->n_services);
	for (uint32_t i = 0; i < st->n_services; i++) {
		const struct fwd_service *s = &st->services[i];

		h = hash_step(h, hash_bytes(&s->vip, sizeof(s->vip), DIGEST_SEED));
		h = hash_step(h, (uint64_t)s->port << 8 | s->proto);
		/* the table's slots, digested when it was made (fwd_table_digest) */
		h = hash_step(h, s->table_digest);
	}
	return hash_fmix64(h);
}

void cluster_set_forwarding(struct cluster *c, uint64_t revision, uint64_t digest)
{
	c->fwd_known = 1;
	c->fwd_revision = revision;
	c->fwd_digest = digest;
}

int cluster_forwarding(const struct cluster *c, uint64_t *revision, uint64_t *digest)
{
	*revision = c->fwd_known ? c->fwd_revision : 0;
	*digest = c->fwd_known ? c->fwd_digest : 0;
	return c->fwd_known ? 0 : -ENOENT;
}

/* ---- The API's backend ---- */

struct api_call {
	api_done_fn done;
	void *dctx;
};

static void api_call_done(void *ctx, const struct node_result *res)
{
	struct api_call *a = ctx;
	struct api_commit cm;

	memset(&cm, 0, sizeof(cm));
	cm.rc = res->rc;
	cm.index = res->index;
	cm.code = res->rc == NODE_OK && res->app_result >= 0 && res->app_result < SM_ERR__COUNT
		      ? (enum sm_errcode)res->app_result
		      : SM_ERR_OK;
	a->done(a->dctx, &cm);
	free(a);
}

static struct api_call *api_call_new(api_done_fn done, void *dctx)
{
	struct api_call *a = malloc(sizeof(*a));
	if (a != NULL) {
		a->done = done;
		a->dctx = dctx;
	}
	return a;
}

static const struct sm_state *be_state(void *ctx)
{
	return ((struct cluster *)ctx)->sm;
}

static void be_info(void *ctx, struct node_info *out)
{
	node_get_info(((struct cluster *)ctx)->node, out);
}

static int be_is_leader(void *ctx)
{
	return node_is_leader(((struct cluster *)ctx)->node);
}

static int be_propose(void *ctx, const uint8_t *data, uint32_t len, api_done_fn done, void *dctx)
{
	struct cluster *c = ctx;
	struct api_call *a = api_call_new(done, dctx);
	int rc;

	if (a == NULL)
		return -ENOMEM;
	rc = node_propose(c->node, data, len, api_call_done, a);
	if (rc != 0)
		free(a);
	return rc;
}

static int be_read_index(void *ctx, api_done_fn done, void *dctx)
{
	struct cluster *c = ctx;
	struct api_call *a = api_call_new(done, dctx);
	int rc;

	if (a == NULL)
		return -ENOMEM;
	rc = node_read_index(c->node, api_call_done, a);
	if (rc != 0)
		free(a);
	return rc;
}

static int be_member(void *ctx, enum api_member_op op, uint64_t id, const char *raft_addr,
		     api_done_fn done, void *dctx)
{
	struct cluster *c = ctx;
	struct api_call *a = api_call_new(done, dctx);
	int rc;

	if (a == NULL)
		return -ENOMEM;
	switch (op) {
	case API_MEMBER_ADD_LEARNER:
		rc = node_add_learner(c->node, id, raft_addr, api_call_done, a);
		break;
	case API_MEMBER_PROMOTE:
		rc = node_promote(c->node, id, api_call_done, a);
		break;
	case API_MEMBER_REMOVE:
		rc = node_remove(c->node, id, api_call_done, a);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	if (rc != 0)
		free(a);
	return rc;
}

static int be_digest(void *ctx, uint64_t *out)
{
	uint64_t rev;
	return cluster_forwarding(ctx, &rev, out);
}

void cluster_api_backend(struct cluster *c, struct api_backend *out)
{
	memset(out, 0, sizeof(*out));
	out->ctx = c;
	out->state = be_state;
	out->info = be_info;
	out->is_leader = be_is_leader;
	out->propose = be_propose;
	out->read_index = be_read_index;
	out->member = be_member;
	out->forwarding_digest = be_digest;
}

/* ---- Status file ---- */

int cluster_write_status(const struct cluster *c, const char *path)
{
	struct node_info *ni = malloc(sizeof(*ni));
	char tmp[4096];
	FILE *f;
	int rc = 0;

	if (ni == NULL)
		return -ENOMEM;
	node_get_info(c->node, ni);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL) {
		rc = -errno;
		free(ni);
		return rc;
	}
	fprintf(f,
		"id=%" PRIu64 "\nrole=%s\nterm=%" PRIu64 "\nleader=%" PRIu64 "\ncommit=%" PRIu64
		"\napplied=%" PRIu64 "\nrevision=%" PRIu64 "\nseeded=%d\nfwd_revision=%" PRIu64
		"\nfwd_digest=%016" PRIx64 "\nmembers=%u\nservices=%u\nstopped=%d\n",
		(uint64_t)ni->id, role_name(ni->role), ni->term, (uint64_t)ni->leader, ni->commit,
		ni->applied, sm_revision(c->sm), cluster_seeded(c),
		c->fwd_known ? c->fwd_revision : 0, c->fwd_known ? c->fwd_digest : 0,
		ni->n_members, sm_service_count(c->sm), ni->stopped || c->stopped);
	free(ni);
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}
