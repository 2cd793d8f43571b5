/* Unit tests for raft/transport: real TCP on 127.0.0.1, one event_base, handshake, refusals,
 * bounds, reconnects. */
#include "raft/transport.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "raft/codec.h"

#define CLUSTER	   0xC1A55E5ULL
#define TIMEOUT_MS 15000 /* generous: only a hang ever reaches it */

/* ---------------------------------------------------------------- helpers */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? splitmix64(s) % n : 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One non-blocking turn of the loop, then a short yield so waiting does not spin a core. */
static void pump_once(struct event_base *base)
{
	struct timespec ts = {0, 200 * 1000};

	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	nanosleep(&ts, NULL);
}

/* Runs the loop until cond holds; the deadline only catches hangs, nothing asserts on time. */
#define PUMP_UNTIL(base, cond)                                                                     \
	do {                                                                                       \
		uint64_t dl_ = mono_ms() + TIMEOUT_MS;                                             \
		while (!(cond)) {                                                                  \
			if (mono_ms() > dl_)                                                       \
				fail_msg("timed out waiting for: %s", #cond);                      \
			pump_once(base);                                                           \
		}                                                                                  \
	} while (0)

static void pump_n(struct event_base *base, int n)
{
	for (int i = 0; i < n; i++)
		pump_once(base);
}

/* A node under test: its transport and everything it received (deep copies). */
struct node {
	raft_id id;
	struct raft_transport *t;
	char addr[64];
	struct raft_message *got;
	size_t n_got, cap_got;
};

static void on_message(void *ctx, const struct raft_message *m)
{
	struct node *n = ctx;

	if (n->n_got == n->cap_got) {
		n->cap_got = n->cap_got ? 2 * n->cap_got : 16;
		n->got = realloc(n->got, n->cap_got * sizeof(*n->got));
		assert_non_null(n->got);
	}
	assert_int_equal(raft_message_clone(&n->got[n->n_got], m), 0);
	n->n_got++;
}

static void node_clear(struct node *n)
{
	for (size_t i = 0; i < n->n_got; i++)
		raft_message_free(&n->got[i]);
	n->n_got = 0;
}

static void test_opts(struct raft_transport_opts *o, uint64_t seed)
{
	raft_transport_opts_default(o, seed);
	/* Short backoff keeps the reconnect tests quick; the logic is the same. */
	o->backoff_min_ms = 10;
	o->backoff_max_ms = 160;
}

static void node_start_opts(struct node *n, struct event_base *base, raft_id id, uint64_t cluster,
			    const char *listen, const struct raft_transport_opts *o)
{
	char err[200] = "";

	n->id = id;
	n->t = raft_transport_new(base, id, cluster, listen ? listen : "127.0.0.1:0", o, on_message,
				  n, err, sizeof(err));
	if (!n->t)
		fail_msg("raft_transport_new: %s", err);
	assert_int_equal(raft_transport_local_addr(n->t, n->addr, sizeof(n->addr)), 0);
}

static void node_start(struct node *n, struct event_base *base, raft_id id, uint64_t cluster,
		       const char *listen)
{
	struct raft_transport_opts o;

	test_opts(&o, id * 7919);
	node_start_opts(n, base, id, cluster, listen, &o);
}

static void node_stop(struct node *n)
{
	raft_transport_free(n->t);
	n->t = NULL;
	node_clear(n);
	free(n->got);
	n->got = NULL;
	n->cap_got = 0;
}

static struct raft_transport_peer_stats pstats(const struct node *n, raft_id id)
{
	struct raft_transport_peer_stats st;

	assert_int_equal(raft_transport_peer_stats(n->t, id, &st), 0);
	return st;
}

static struct raft_transport_stats tstats(const struct node *n)
{
	struct raft_transport_stats st;

	raft_transport_stats(n->t, &st);
	return st;
}

static int connected(const struct node *n, raft_id id)
{
	return pstats(n, id).connected;
}

/* Settled: every peer connected over exactly one connection, no handshake in flight. */
static int settled(const struct node *n, uint32_t peers)
{
	struct raft_transport_stats st = tstats(n);

	return st.peers == peers && st.conns_established == peers && st.conns_handshaking == 0;
}

/* A random message of type t that the codec accepts; owns its memory (raft_message_free). */
static void make_msg(struct raft_message *m, uint8_t t, raft_id from, raft_id to, uint64_t *s)
{
	memset(m, 0, sizeof(*m));
	m->type = t;
	m->from = from;
	m->to = to;
	m->reject = (uint8_t)rnd(s, 2);
	m->flags = (uint8_t)rnd(s, 2);
	m->term = splitmix64(s);
	m->log_term = splitmix64(s);
	m->index = splitmix64(s);
	m->commit = splitmix64(s);
	m->reject_hint = splitmix64(s);
	m->hint_term = splitmix64(s);
	m->ctx = splitmix64(s);
	if (t == RAFT_MSG_APPEND) {
		m->n_entries = 1 + (uint32_t)rnd(s, 8);
		m->entries = calloc(m->n_entries, sizeof(*m->entries));
		assert_non_null(m->entries);
		for (uint32_t i = 0; i < m->n_entries; i++) {
			struct raft_entry *e = &m->entries[i];

			e->term = splitmix64(s);
			e->index = splitmix64(s);
			e->type = (uint8_t)(1 + rnd(s, 3));
			e->len = (uint32_t)rnd(s, 300);
			e->data = e->len ? malloc(e->len) : NULL;
			for (uint32_t k = 0; k < e->len; k++)
				e->data[k] = (uint8_t)splitmix64(s);
		}
	} else if (t == RAFT_MSG_SNAPSHOT) {
		m->snap.index = splitmix64(s);
		m->snap.term = splitmix64(s);
		m->snap.conf.n_voters = 1 + (uint32_t)rnd(s, RAFT_MAX_MEMBERS);
		m->snap.conf.n_learners = (uint32_t)rnd(s, RAFT_MAX_MEMBERS + 1);
		for (uint32_t i = 0; i < m->snap.conf.n_voters; i++)
			m->snap.conf.voters[i] = splitmix64(s);
		for (uint32_t i = 0; i < m->snap.conf.n_learners; i++)
			m->snap.conf.learners[i] = splitmix64(s);
		m->snap_len = (uint32_t)rnd(s, 5000);
		m->snap_data = m->snap_len ? malloc(m->snap_len) : NULL;
		for (uint32_t k = 0; k < m->snap_len; k++)
			m->snap_data[k] = (uint8_t)splitmix64(s);
	}
}

static void assert_msg_equal(const struct raft_message *a, const struct raft_message *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->from == b->from && a->to == b->to && a->term == b->term);
	assert_true(a->log_term == b->log_term && a->index == b->index && a->commit == b->commit);
	assert_true(a->reject_hint == b->reject_hint && a->hint_term == b->hint_term);
	assert_true(a->ctx == b->ctx);
	assert_int_equal(a->n_entries, b->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];

		assert_true(x->term == y->term && x->index == y->index && x->type == y->type);
		assert_int_equal(x->len, y->len);
		if (x->len)
			assert_memory_equal(x->data, y->data, x->len);
	}
	assert_true(a->snap.index == b->snap.index && a->snap.term == b->snap.term);
	assert_int_equal(a->snap.conf.n_voters, b->snap.conf.n_voters);
	assert_int_equal(a->snap.conf.n_learners, b->snap.conf.n_learners);
	assert_memory_equal(a->snap.conf.voters, b->snap.conf.voters,
			    sizeof(raft_id) * a->snap.conf.n_voters);
	assert_memory_equal(a->snap.conf.learners, b->snap.conf.learners,
			    sizeof(raft_id) * a->snap.conf.n_learners);
	assert_int_equal(a->snap_len, b->snap_len);
	if (a->snap_len)
		assert_memory_equal(a->snap_data, b->snap_data, a->snap_len);
}

/* A small message with a marker in ctx, for tests that only track which ones arrived. */
static int send_marker(struct node *from, raft_id to, uint8_t type, uint64_t ctx)
{
	struct raft_message m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.from = from->id;
	m.to = to;
	m.term = 1;
	m.ctx = ctx;
	return raft_transport_send(from->t, &m);
}

/* ---------------------------------------------------------------- raw sockets (fake peers) */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The 40-byte handshake record of docs/raft-transport.md, built independently of the transport. */
static void hello(uint8_t *h, uint8_t kind, uint8_t status, uint64_t cluster, raft_id from,
		  raft_id to, uint64_t inc)
{
	memcpy(h, "FRFT", 4);
	h[4] = 1;
	h[5] = kind; /* 1 HELLO, 2 ACK */
	h[6] = status;
	h[7] = RAFT_CODEC_VERSION;
	put64(h + 8, cluster);
	put64(h + 16, from);
	put64(h + 24, to);
	put64(h + 32, inc);
}

static int port_of(const char *addr)
{
	const char *c = strrchr(addr, ':');

	assert_non_null(c);
	return atoi(c + 1);
}

static int raw_connect(const char *addr)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port_of(addr));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Loopback connect completes in the kernel (listen backlog); no loop turn needed. */
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* A listening socket on a free port; its "127.0.0.1:port" in addr. */
static int raw_listen(char *addr, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sa.sin_port));
	return fd;
}

/* An address where nothing listens (bound once to get a free port, then closed). */
static void dead_addr(char *addr, size_t len)
{
	close(raw_listen(addr, len));
}

static int raw_accept(struct event_base *base, int lfd)
{
	int fd;

	PUMP_UNTIL(base, (fd = accept(lfd, NULL, NULL)) >= 0);
	return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void raw_recv_exact(struct event_base *base, int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;

	PUMP_UNTIL(base, (r = recv(fd, buf + got, len - got, MSG_DONTWAIT)) == 0 ||
			     (r > 0 && (got += (size_t)r) == len) || (r < 0 && errno != EAGAIN));
	assert_int_equal(got, len);
}

/* The transport closed fd: EOF or reset (unread bytes are skipped). */
static int raw_closed(int fd)
{
	uint8_t b[4096];
	ssize_t r;

	while ((r = recv(fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
		;
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Reads one codec frame from a raw socket and decodes it into *m (owning copy). */
static void raw_recv_msg(struct event_base *base, int fd, struct raft_message *m)
{
	uint8_t hdr[5], *buf;
	size_t flen;
	struct raft_message tmp;

	raw_recv_exact(base, fd, hdr, 5);
	assert_int_equal(raft_codec_frame_len(hdr, 5, &flen), 0);
	buf = malloc(flen);
	assert_non_null(buf);
	memcpy(buf, hdr, 5);
	raw_recv_exact(base, fd, buf + 5, flen - 5);
	assert_int_equal(raft_codec_decode(buf, flen, &tmp), 0);
	assert_int_equal(raft_message_clone(m, &tmp), 0);
	raft_codec_release(&tmp);
	free(buf);
}

/* ---------------------------------------------------------------- tests */

/* Three transports, every ordered pair, every message type: all arrive intact and in order. */
static void test_three_nodes_every_type(void **state)
{
	struct event_base *base = event_base_new();
	struct node n[3];
	uint64_t seed = 0x7e57;
	struct raft_message sent[3][3][10];

	(void)state;
	memset(n, 0, sizeof(n));
	for (int i = 0; i < 3; i++)
		node_start(&n[i], base, (raft_id)(i + 1), CLUSTER, NULL);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				assert_int_equal(
				    raft_transport_set_peer(n[i].t, n[j].id, n[j].addr), 0);
	PUMP_UNTIL(base, settled(&n[0], 2) && settled(&n[1], 2) && settled(&n[2], 2));

	/* One connection per pair: exactly one end of each pair dialed it. */
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			assert_int_equal(pstats(&n[i], n[j].id).dialed_by_us +
					     pstats(&n[j], n[i].id).dialed_by_us,
					 1);

	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			if (i == j)
				continue;
			for (uint8_t t = RAFT_MSG_APPEND; t <= RAFT_MSG_TIMEOUT_NOW; t++) {
				make_msg(&sent[i][j][t - 1], t, n[i].id, n[j].id, &seed);
				assert_int_equal(raft_transport_send(n[i].t, &sent[i][j][t - 1]),
						 0);
			}
		}
	PUMP_UNTIL(base, n[0].n_got == 20 && n[1].n_got == 20 && n[2].n_got == 20);

	for (int j = 0; j < 3; j++) {
		size_t k[3] = {0, 0, 0};

		/* Per sender, the messages arrive in the order sent. */
		for (size_t r = 0; r < n[j].n_got; r++) {
			const struct raft_message *m = &n[j].got[r];
			int i = (int)m->from - 1;

			assert_true(i >= 0 && i < 3 && i != j);
			assert_msg_equal(m, &sent[i][j][k[i]++]);
		}
		for (int i = 0; i < 3; i++)
			if (i != j) {
				struct raft_transport_peer_stats st = pstats(&n[j], n[i].id);

				assert_int_equal(k[i], 10);
				assert_int_equal(st.msgs_recv, 10);
				assert_int_equal(pstats(&n[i], n[j].id).msgs_sent, 10);
				assert_int_equal(
				    st.decode_errors + st.misrouted + st.drops_queue_full, 0);
			}
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				for (int t = 0; t < 10; t++)
					raft_message_free(&sent[i][j][t]);

	/* Argument checks: not our id as sender, unknown destination, ourselves. */
	assert_int_equal(send_marker(&n[0], 9, RAFT_MSG_HEARTBEAT, 0), -ENOENT);
	{
		struct raft_message m;

		memset(&m, 0, sizeof(m));
		m.type = RAFT_MSG_HEARTBEAT;
		m.from = 2;
		m.to = 3;
		assert_int_equal(raft_transport_send(n[0].t, &m), -EINVAL);
		m.from = 1;
		m.to = 1;
		assert_int_equal(raft_transport_send(n[0].t, &m), -EINVAL);
		m.to = 2;
		m.type = 99;
		assert_int_equal(raft_transport_send(n[0].t, &m), -ENOMSG);
	}
	assert_int_equal(raft_transport_set_peer(n[0].t, 1, n[1].addr), -EINVAL);
	assert_int_equal(raft_transport_set_peer(n[0].t, 0, n[1].addr), -EINVAL);
	assert_int_equal(raft_transport_set_peer(n[0].t, 5, "localhost:80"), -EINVAL);
	assert_int_equal(raft_transport_set_peer(n[0].t, 5, "127.0.0.1:0"), -EINVAL);
	assert_int_equal(raft_transport_remove_peer(n[0].t, 5), -ENOENT);

	for (int i = 0; i < 3; i++)
		node_stop(&n[i]);
	event_base_free(base);
}

/* Both ends dial at once: both ends keep the same connection, the one dialed by the lower id. */
static void test_simultaneous_dial(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&b, base, 2, CLUSTER, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);
	/* Both dial timers fire in the same first turn, before either connection exists. */
	PUMP_UNTIL(base, settled(&a, 1) && settled(&b, 1) && pstats(&a, 2).dials == 1 &&
			     pstats(&b, 1).dials == 1);
	/* Who counts the duplicate depends on which handshake finished first; someone does. */
	assert_true(pstats(&a, 2).duplicates_closed + pstats(&b, 1).duplicates_closed >= 1);
	assert_int_equal(pstats(&a, 2).dialed_by_us, 1);
	assert_int_equal(pstats(&b, 1).dialed_by_us, 0);
	/* Nothing flaps afterwards, and traffic flows both ways. */
	pump_n(base, 50);
	assert_true(settled(&a, 1) && settled(&b, 1));
	assert_int_equal(pstats(&a, 2).connects, 2);
	assert_int_equal(send_marker(&a, 2, RAFT_MSG_HEARTBEAT, 11), 0);
	assert_int_equal(send_marker(&b, 1, RAFT_MSG_HEARTBEAT_RESP, 12), 0);
	PUMP_UNTIL(base, a.n_got == 1 && b.n_got == 1);
	assert_true(b.got[0].ctx == 11 && a.got[0].ctx == 12);
	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

/*
 * The duplicate rule, played by a scripted fake peer 9 against node 1:
 * same incarnation -> the connection dialed by the lower id (1) stays;
 * new incarnation -> the new connection wins; same dialer -> the newest wins.
 */
static void test_duplicate_rules(void **state)
{
	struct event_base *base = event_base_new();
	struct node a;
	char faddr[64];
	uint8_t h[40];
	int lfd, x, y, z, w;
	struct raft_message m;

	(void)state;
	memset(&a, 0, sizeof(a));
	node_start(&a, base, 1, CLUSTER, NULL);
	lfd = raw_listen(faddr, sizeof(faddr));
	assert_int_equal(raft_transport_set_peer(a.t, 9, faddr), 0);

	/* X: node 1 dials the fake; check its HELLO, accept with incarnation 100. */
	x = raw_accept(base, lfd);
	raw_recv_exact(base, x, h, 40);
	assert_memory_equal(h, "FRFT", 4);
	assert_int_equal(h[4], 1);
	assert_int_equal(h[5], 1);
	assert_int_equal(h[7], RAFT_CODEC_VERSION);
	assert_true(get64(h + 8) == CLUSTER && get64(h + 16) == 1 && get64(h + 24) == 9);
	hello(h, 2, 0, CLUSTER, 9, 1, 100);
	raw_send(x, h, 40);
	PUMP_UNTIL(base, connected(&a, 9));
	assert_int_equal(pstats(&a, 9).dialed_by_us, 1);

	/* Y: the fake dials too, same incarnation. Node 1's own connection (lower dialer) stays. */
	y = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 9, 1, 100);
	raw_send(y, h, 40);
	PUMP_UNTIL(base, pstats(&a, 9).duplicates_closed == 1);
	PUMP_UNTIL(base, raw_closed(y));
	assert_int_equal(pstats(&a, 9).dialed_by_us, 1);
	assert_int_equal(send_marker(&a, 9, RAFT_MSG_HEARTBEAT, 1), 0);
	raw_recv_msg(base, x, &m);
	assert_true(m.ctx == 1 && m.from == 1 && m.to == 9);
	raft_message_free(&m);

	/* Z: the fake "restarted" (incarnation 200): its connection replaces X. */
	z = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 9, 1, 200);
	raw_send(z, h, 40);
	raw_recv_exact(base, z, h, 40);
	assert_int_equal(h[5], 2);
	assert_int_equal(h[6], 0);
	assert_true(get64(h + 16) == 1 && get64(h + 24) == 9);
	PUMP_UNTIL(base, pstats(&a, 9).duplicates_closed == 2);
	PUMP_UNTIL(base, raw_closed(x));
	assert_int_equal(pstats(&a, 9).dialed_by_us, 0);
	assert_int_equal(send_marker(&a, 9, RAFT_MSG_HEARTBEAT, 2), 0);
	raw_recv_msg(base, z, &m);
	assert_true(m.ctx == 2);
	raft_message_free(&m);

	/* W: same dialer, same incarnation: the newest wins. */
	w = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 9, 1, 200);
	raw_send(w, h, 40);
	raw_recv_exact(base, w, h, 40);
	PUMP_UNTIL(base, pstats(&a, 9).duplicates_closed == 3);
	PUMP_UNTIL(base, raw_closed(z));
	assert_int_equal(send_marker(&a, 9, RAFT_MSG_HEARTBEAT, 3), 0);
	raw_recv_msg(base, w, &m);
	assert_true(m.ctx == 3);
	raft_message_free(&m);

	/* The fake's messages are delivered on W as well. */
	{
		uint8_t buf[RAFT_CODEC_HDR_LEN];
		size_t len;

		memset(&m, 0, sizeof(m));
		m.type = RAFT_MSG_VOTE_RESP;
		m.from = 9;
		m.to = 1;
		m.ctx = 77;
		assert_int_equal(raft_codec_encode(&m, buf, sizeof(buf), &len), 0);
		raw_send(w, buf, len);
		PUMP_UNTIL(base, a.n_got == 1);
		assert_true(a.got[0].ctx == 77 && a.got[0].type == RAFT_MSG_VOTE_RESP);
	}
	assert_int_equal(tstats(&a).conns_established, 1);

	close(x);
	close(y);
	close(z);
	close(w);
	close(lfd);
	node_stop(&a);
	event_base_free(base);
}

/* A node not in the peer set is refused (and told why); nothing it sends is delivered. */
static void test_unknown_node_refused(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b, d;
	uint8_t h[40];
	int fd;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&d, 0, sizeof(d));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&b, base, 2, CLUSTER, NULL);
	node_start(&d, base, 77, CLUSTER, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);
	/* 77 knows node 1, node 1 does not know 77. */
	assert_int_equal(raft_transport_set_peer(d.t, 1, a.addr), 0);
	assert_int_equal(send_marker(&d, 1, RAFT_MSG_VOTE, 5), 0);
	PUMP_UNTIL(base, pstats(&d, 1).refused_by_peer >= 3 && settled(&a, 1) && settled(&b, 1));
	assert_int_equal(pstats(&d, 1).last_refusal, RAFT_TRANSPORT_REFUSED_UNKNOWN);
	assert_int_equal(pstats(&d, 1).connects, 0);
	assert_int_equal(pstats(&d, 1).queue_msgs, 1);
	assert_true(tstats(&a).refused_unknown >= 3);
	assert_int_equal(a.n_got, 0);
	assert_string_equal(raft_transport_refusal_name(RAFT_TRANSPORT_REFUSED_UNKNOWN),
			    "unknown node");

	/* A raw HELLO from an unknown id gets a refusal ACK and the connection is closed. */
	fd = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 4242, 1, 1);
	raw_send(fd, h, 40);
	raw_recv_exact(base, fd, h, 40);
	assert_int_equal(h[5], 2);
	assert_int_equal(h[6], RAFT_TRANSPORT_REFUSED_UNKNOWN);
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);

	/* A HELLO addressed to another id is refused as misaddressed. */
	fd = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 2, 3, 1);
	raw_send(fd, h, 40);
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);
	assert_int_equal(tstats(&a).refused_misaddressed, 1);

	/* Membership at run time: once added, 77 connects and its queued vote arrives. */
	assert_int_equal(raft_transport_set_peer(a.t, 77, NULL), 0);
	PUMP_UNTIL(base, a.n_got == 1);
	assert_true(a.got[0].from == 77 && a.got[0].ctx == 5);
	assert_true(connected(&a, 77) && !pstats(&a, 77).dialed_by_us);
	/* Removed again: its connection is closed and its redials are refused. */
	{
		uint64_t before = tstats(&a).refused_unknown;

		assert_int_equal(raft_transport_remove_peer(a.t, 77), 0);
		PUMP_UNTIL(base, !connected(&d, 1) && tstats(&a).refused_unknown > before);
		assert_int_equal(send_marker(&a, 77, RAFT_MSG_VOTE, 6), -ENOENT);
	}
	/* Node 1 and 2 were never disturbed. */
	assert_int_equal(send_marker(&b, 1, RAFT_MSG_HEARTBEAT, 8), 0);
	PUMP_UNTIL(base, a.n_got == 2);
	assert_true(a.got[1].from == 2 && a.got[1].ctx == 8);
	assert_int_equal(pstats(&a, 2).disconnects, 0);

	node_stop(&a);
	node_stop(&b);
	node_stop(&d);
	event_base_free(base);
}

/* A node of another cluster is refused in both directions, even with a known id. */
static void test_wrong_cluster_refused(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, e;
	uint8_t h[40];
	int fd;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&e, 0, sizeof(e));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&e, base, 2, CLUSTER + 1, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, e.addr), 0);
	assert_int_equal(raft_transport_set_peer(e.t, 1, a.addr), 0);
	assert_int_equal(send_marker(&a, 2, RAFT_MSG_HEARTBEAT, 1), 0);
	assert_int_equal(send_marker(&e, 1, RAFT_MSG_HEARTBEAT, 2), 0);
	PUMP_UNTIL(base, pstats(&a, 2).refused_by_peer >= 2 && pstats(&e, 1).refused_by_peer >= 2);
	assert_int_equal(pstats(&a, 2).last_refusal, RAFT_TRANSPORT_REFUSED_CLUSTER);
	assert_int_equal(pstats(&e, 1).last_refusal, RAFT_TRANSPORT_REFUSED_CLUSTER);
	assert_true(tstats(&a).refused_cluster >= 2 && tstats(&e).refused_cluster >= 2);
	assert_int_equal(pstats(&a, 2).connects + pstats(&e, 1).connects, 0);
	assert_int_equal(a.n_got + e.n_got, 0);

	/* Raw HELLO with the wrong cluster: refusal status, then closed. */
	fd = raw_connect(a.addr);
	hello(h, 1, 0, 0xBAD, 2, 1, 1);
	raw_send(fd, h, 40);
	raw_recv_exact(base, fd, h, 40);
	assert_int_equal(h[6], RAFT_TRANSPORT_REFUSED_CLUSTER);
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);
	/* Wrong transport version: refused as such. */
	fd = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 2, 1, 1);
	h[4] = 2;
	raw_send(fd, h, 40);
	raw_recv_exact(base, fd, h, 40);
	assert_int_equal(h[6], RAFT_TRANSPORT_REFUSED_VERSION);
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);

	node_stop(&a);
	node_stop(&e);
	event_base_free(base);
}

/* Garbage closes only the connection it came on; the transport keeps serving the others. */
static void test_garbage_closes_connection(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b;
	uint8_t h[40], junk[256];
	uint64_t seed = 0x9a7ba9e;
	int fd;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&b, base, 2, CLUSTER, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);
	assert_int_equal(raft_transport_set_peer(a.t, 9, NULL),
			 0); /* accept-only peer for the raw socket */
	PUMP_UNTIL(base, settled(&b, 1) && connected(&a, 2));

	/* 1. Garbage instead of a HELLO. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)splitmix64(&seed);
	junk[4] = 0xee; /* never a valid version, so the frame is refused at once */
	fd = raw_connect(a.addr);
	raw_send(fd, junk, sizeof(junk));
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);
	assert_int_equal(tstats(&a).refused_version, 1);

	/* 2. A valid handshake, then frames that do not decode: each closes its connection. */
	for (int round = 0; round < 4; round++) {
		uint64_t before = tstats(&a).decode_errors;

		fd = raw_connect(a.addr);
		hello(h, 1, 0, CLUSTER, 9, 1, 1);
		raw_send(fd, h, 40);
		raw_recv_exact(base, fd, h, 40);
		assert_int_equal(h[6], 0);
		PUMP_UNTIL(base, connected(&a, 9));
		if (round == 0) {
			raw_send(fd, junk, sizeof(junk)); /* random: length and version nonsense */
		} else {
			/* A well-formed frame, then one field broken. */
			struct raft_message m;
			uint8_t buf[RAFT_CODEC_HDR_LEN];
			size_t len;

			memset(&m, 0, sizeof(m));
			m.type = RAFT_MSG_HEARTBEAT;
			m.from = 9;
			m.to = 1;
			assert_int_equal(raft_codec_encode(&m, buf, sizeof(buf), &len), 0);
			if (round == 1)
				buf[4] = 9; /* version */
			else if (round == 2)
				buf[5] = 200; /* type */
			else
				buf[0] = 0xff, buf[1] = 0xff, buf[2] = 0xff,
				buf[3] = 0x7f; /* length */
			raw_send(fd, buf, len);
		}
		PUMP_UNTIL(base, raw_closed(fd) && tstats(&a).decode_errors == before + 1);
		PUMP_UNTIL(base, !connected(&a, 9));
		close(fd);
	}
	assert_int_equal(pstats(&a, 9).decode_errors, 4);
	assert_int_equal(a.n_got, 0);

	/* 3. A frame claiming another sender is misrouted: closed, not delivered. */
	fd = raw_connect(a.addr);
	hello(h, 1, 0, CLUSTER, 9, 1, 1);
	raw_send(fd, h, 40);
	raw_recv_exact(base, fd, h, 40);
	{
		struct raft_message m;
		uint8_t buf[RAFT_CODEC_HDR_LEN];
		size_t len;

		memset(&m, 0, sizeof(m));
		m.type = RAFT_MSG_VOTE;
		m.from = 2; /* not the peer of this connection */
		m.to = 1;
		assert_int_equal(raft_codec_encode(&m, buf, sizeof(buf), &len), 0);
		raw_send(fd, buf, len);
	}
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);
	assert_int_equal(pstats(&a, 9).misrouted, 1);
	assert_int_equal(a.n_got, 0);

	/* Node 2 never noticed any of it. */
	assert_int_equal(pstats(&a, 2).disconnects, 0);
	assert_int_equal(send_marker(&b, 1, RAFT_MSG_APPEND_RESP, 42), 0);
	assert_int_equal(send_marker(&a, 2, RAFT_MSG_APPEND, 43), 0);
	PUMP_UNTIL(base, a.n_got == 1 && b.n_got == 1);
	assert_true(a.got[0].ctx == 42 && b.got[0].ctx == 43);

	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

/* A connection that never says HELLO is closed after the handshake timeout. */
static void test_handshake_timeout(void **state)
{
	struct event_base *base = event_base_new();
	struct raft_transport_opts o;
	struct node a;
	int fd;

	(void)state;
	memset(&a, 0, sizeof(a));
	test_opts(&o, 1);
	o.handshake_timeout_ms = 50;
	o.max_pending_inbound = 2;
	node_start_opts(&a, base, 1, CLUSTER, NULL, &o);
	fd = raw_connect(a.addr);
	PUMP_UNTIL(base, raw_closed(fd));
	close(fd);
	assert_int_equal(tstats(&a).handshake_timeouts, 1);
	/* Pending handshakes are bounded: the third concurrent one is closed at once. */
	{
		int f[3];

		for (int i = 0; i < 3; i++)
			f[i] = raw_connect(a.addr);
		PUMP_UNTIL(base, tstats(&a).accepted == 4);
		assert_int_equal(tstats(&a).refused_busy, 1);
		assert_int_equal(tstats(&a).conns_handshaking, 2);
		PUMP_UNTIL(base, tstats(&a).handshake_timeouts == 3);
		for (int i = 0; i < 3; i++)
			close(f[i]);
	}
	node_stop(&a);
	event_base_free(base);
}

/* A peer that goes away and comes back is redialed (with backoff) and traffic resumes. */
static void test_reconnect(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b;
	char baddr[64];
	uint32_t max_backoff = 0;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&b, base, 2, CLUSTER, NULL);
	strcpy(baddr, b.addr);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);
	PUMP_UNTIL(base, settled(&a, 1) && settled(&b, 1));
	assert_int_equal(send_marker(&a, 2, RAFT_MSG_HEARTBEAT, 1), 0);
	PUMP_UNTIL(base, b.n_got == 1);

	for (int round = 0; round < 2; round++) {
		uint64_t fails0;

		/* B goes away. */
		node_stop(&b);
		PUMP_UNTIL(base, !connected(&a, 2));
		fails0 = pstats(&a, 2).dial_failures;
		assert_int_equal(send_marker(&a, 2, RAFT_MSG_HEARTBEAT, 100 + (uint64_t)round), 0);
		/* Redials are refused for a while; the delay grows but stays capped. */
		{
			uint64_t dl = mono_ms() + TIMEOUT_MS;

			while (pstats(&a, 2).dial_failures < fails0 + 4) {
				uint32_t bo = pstats(&a, 2).backoff_ms;

				if (bo > max_backoff)
					max_backoff = bo;
				if (mono_ms() > dl)
					fail_msg("no redials");
				pump_once(base);
			}
		}
		assert_true(max_backoff >= 10 && max_backoff <= 160);
		assert_int_equal(pstats(&a, 2).queue_msgs, 1);

		/* B comes back on the same address. Round 0: it does not dial (no address
		 * for node 1), so only A's backoff loop can reconnect. Round 1: both dial. */
		node_start(&b, base, 2, CLUSTER, baddr);
		assert_int_equal(raft_transport_set_peer(b.t, 1, round == 0 ? NULL : a.addr), 0);
		PUMP_UNTIL(base, b.n_got == 1 && connected(&a, 2) && settled(&b, 1));
		assert_true(b.got[0].ctx == 100 + (uint64_t)round);
		if (round == 0)
			assert_int_equal(pstats(&a, 2).dialed_by_us, 1);
		/* And the other direction works over the same connection. */
		assert_int_equal(send_marker(&b, 1, RAFT_MSG_HEARTBEAT_RESP, 200 + (uint64_t)round),
				 0);
		PUMP_UNTIL(base, a.n_got == (size_t)round + 1);
		assert_true(a.got[round].ctx == 200 + (uint64_t)round);
	}
	assert_true(pstats(&a, 2).disconnects >= 2);
	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

/* Peer down: the queue never exceeds its bounds, the oldest frames go, the newest are delivered
 * later. */
static void test_queue_bound_peer_down(void **state)
{
	struct event_base *base = event_base_new();
	struct raft_transport_opts o;
	struct node a, b;
	char baddr[64], caddr[64];
	uint64_t seed = 0xb0b;
	const uint32_t max_msgs = 8, n_send = 200;
	const size_t max_bytes = 8192;
	uint64_t kept;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	test_opts(&o, 3);
	o.queue_max_msgs = max_msgs;
	o.queue_max_bytes = max_bytes;
	node_start_opts(&a, base, 1, CLUSTER, NULL, &o);
	dead_addr(baddr, sizeof(baddr));
	assert_int_equal(raft_transport_set_peer(a.t, 2, baddr), 0);

	for (uint32_t i = 0; i < n_send; i++) {
		struct raft_message m;
		struct raft_transport_peer_stats st;

		make_msg(&m, RAFT_MSG_APPEND, 1, 2, &seed);
		m.ctx = i;
		assert_int_equal(raft_transport_send(a.t, &m), 0);
		raft_message_free(&m);
		st = pstats(&a, 2);
		assert_true(st.queue_msgs >= 1 && st.queue_msgs <= max_msgs);
		assert_true(st.queue_bytes <= max_bytes);
		assert_int_equal(st.drops_queue_full + st.queue_msgs, i + 1);
		if (i % 20 == 0)
			pump_n(base, 5); /* let dials fail meanwhile */
	}
	assert_true(pstats(&a, 2).dial_failures >= 1);
	kept = pstats(&a, 2).queue_msgs;

	/* B appears: exactly the newest `kept` messages arrive, in order. */
	node_start(&b, base, 2, CLUSTER, baddr);
	assert_int_equal(raft_transport_set_peer(b.t, 1, NULL), 0);
	PUMP_UNTIL(base, b.n_got == kept);
	for (size_t i = 0; i < kept; i++)
		assert_true(b.got[i].ctx == n_send - kept + i);
	assert_int_equal(pstats(&a, 2).queue_msgs, 0);

	/* A frame larger than the byte bound is queued alone. */
	dead_addr(caddr, sizeof(caddr));
	assert_int_equal(raft_transport_set_peer(a.t, 3, caddr), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_marker(&a, 3, RAFT_MSG_HEARTBEAT, (uint64_t)i), 0);
	{
		struct raft_message m;
		struct raft_entry e = {
		    .term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 20000};
		struct raft_transport_peer_stats st;

		e.data = calloc(1, e.len);
		memset(&m, 0, sizeof(m));
		m.type = RAFT_MSG_APPEND;
		m.from = 1;
		m.to = 3;
		m.n_entries = 1;
		m.entries = &e;
		assert_int_equal(raft_transport_send(a.t, &m), 0);
		st = pstats(&a, 3);
		assert_int_equal(st.queue_msgs, 1);
		assert_true(st.queue_bytes > max_bytes);
		assert_int_equal(st.drops_queue_full, 3);
		/* ... and the next small one pushes it out again. */
		assert_int_equal(send_marker(&a, 3, RAFT_MSG_HEARTBEAT, 9), 0);
		st = pstats(&a, 3);
		assert_int_equal(st.queue_msgs, 1);
		assert_true(st.queue_bytes == RAFT_CODEC_HDR_LEN);
		free(e.data);
	}
	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

/* A peer that handshakes and then never reads: memory stays bounded by the queue and the high-water
 * mark. */
static void test_queue_bound_slow_peer(void **state)
{
	struct event_base *base = event_base_new();
	struct raft_transport_opts o;
	struct node a;
	char faddr[64];
	uint8_t h[40];
	int lfd, fd;
	const size_t frame = RAFT_CODEC_HDR_LEN + 4 + 21 + 4096;
	struct raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 4096};
	struct raft_message m;
	struct raft_transport_peer_stats st;

	(void)state;
	memset(&a, 0, sizeof(a));
	test_opts(&o, 4);
	o.queue_max_msgs = 64;
	o.queue_max_bytes = 128 * 1024;
	o.out_high_bytes = 64 * 1024;
	node_start_opts(&a, base, 1, CLUSTER, NULL, &o);
	lfd = raw_listen(faddr, sizeof(faddr));
	{
		/* A small, fixed receive buffer (no autotuning), inherited by the accepted socket.
		 */
		int small = 4096;

		setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	assert_int_equal(raft_transport_set_peer(a.t, 9, faddr), 0);
	fd = raw_accept(base, lfd);
	raw_recv_exact(base, fd, h, 40);
	hello(h, 2, 0, CLUSTER, 9, 1, 5);
	raw_send(fd, h, 40);
	PUMP_UNTIL(base, connected(&a, 9));

	e.data = calloc(1, e.len);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = 1;
	m.to = 9;
	m.n_entries = 1;
	m.entries = &e;
	/* 8000 x 4 KiB = 32 MiB offered, far more than the kernel buffers hold. */
	for (int i = 0; i < 8000; i++) {
		assert_int_equal(raft_transport_send(a.t, &m), 0);
		if (i % 16 == 0)
			pump_once(base);
		st = pstats(&a, 9);
		assert_true(st.queue_msgs <= o.queue_max_msgs &&
			    st.queue_bytes <= o.queue_max_bytes);
		assert_true(st.out_bytes <= o.out_high_bytes + frame);
	}
	st = pstats(&a, 9);
	assert_true(st.connected);
	assert_true(st.drops_queue_full > 0);
	assert_int_equal(st.msgs_sent + st.drops_queue_full + st.queue_msgs, 8000);
	free(e.data);
	close(fd);
	close(lfd);
	node_stop(&a);
	event_base_free(base);
}

/* 64 entries of 4 KiB in one AppendEntries, and a 3 MiB snapshot, arrive intact. */
static void test_large_messages(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b;
	struct raft_message m, s;
	uint64_t seed = 0x1a63e;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	node_start(&a, base, 1, CLUSTER, NULL);
	node_start(&b, base, 2, CLUSTER, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);

	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 7;
	m.index = 1000;
	m.log_term = 6;
	m.commit = 990;
	m.n_entries = 64;
	m.entries = calloc(64, sizeof(*m.entries));
	assert_non_null(m.entries);
	for (uint32_t i = 0; i < 64; i++) {
		m.entries[i].term = 7;
		m.entries[i].index = 1001 + i;
		m.entries[i].type = RAFT_ENTRY_NORMAL;
		m.entries[i].len = 4096;
		m.entries[i].data = malloc(4096);
		for (int k = 0; k < 4096; k++)
			m.entries[i].data[k] = (uint8_t)splitmix64(&seed);
	}
	make_msg(&s, RAFT_MSG_SNAPSHOT, 1, 2, &seed);
	free(s.snap_data);
	s.snap_len = 3u << 20;
	s.snap_data = malloc(s.snap_len);
	for (uint32_t k = 0; k < s.snap_len; k += 8)
		put64(s.snap_data + k, splitmix64(&seed));

	/* Sent before the connection exists: they wait in the queue. */
	assert_int_equal(raft_transport_send(a.t, &m), 0);
	assert_int_equal(raft_transport_send(a.t, &s), 0);
	assert_int_equal(raft_transport_send(a.t, &m), 0);
	PUMP_UNTIL(base, b.n_got == 3);
	assert_msg_equal(&b.got[0], &m);
	assert_msg_equal(&b.got[1], &s);
	assert_msg_equal(&b.got[2], &m);
	assert_int_equal(pstats(&b, 1).decode_errors, 0);

	raft_message_free(&m);
	raft_message_free(&s);
	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

/* on_message may remove the very peer it is hearing from; the transport must not touch freed
 * memory. */
static struct node *g_remover;

static void on_message_remove(void *ctx, const struct raft_message *m)
{
	on_message(ctx, m);
	if (m->ctx == 1)
		assert_int_equal(raft_transport_remove_peer(g_remover->t, m->from), 0);
}

static void test_remove_from_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct node a, b;
	char err[200];

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.id = 1;
	a.t = raft_transport_new(base, 1, CLUSTER, "127.0.0.1:0", NULL, on_message_remove, &a, err,
				 sizeof(err));
	assert_non_null(a.t);
	assert_int_equal(raft_transport_local_addr(a.t, a.addr, sizeof(a.addr)), 0);
	g_remover = &a;
	node_start(&b, base, 2, CLUSTER, NULL);
	assert_int_equal(raft_transport_set_peer(a.t, 2, b.addr), 0);
	assert_int_equal(raft_transport_set_peer(b.t, 1, a.addr), 0);
	PUMP_UNTIL(base, settled(&a, 1) && settled(&b, 1));
	/* Three frames in one burst: the first removes the sender mid-read. */
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(send_marker(&b, 1, RAFT_MSG_HEARTBEAT, i), 0);
	PUMP_UNTIL(base, tstats(&a).peers == 0 && !connected(&b, 1));
	assert_int_equal(a.n_got, 1);
	assert_int_equal(tstats(&a).conns_established, 0);
	node_stop(&a);
	node_stop(&b);
	event_base_free(base);
}

static void test_bad_arguments(void **state)
{
	struct event_base *base = event_base_new();
	struct raft_transport_opts o;
	struct raft_transport *t;
	char err[200] = "", addr[64];

	(void)state;
	t = raft_transport_new(base, 1, CLUSTER, "no-such-host:1", NULL, on_message, NULL, err,
			       sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "listen address"));
	t = raft_transport_new(base, 0, CLUSTER, NULL, NULL, on_message, NULL, err, sizeof(err));
	assert_null(t);
	raft_transport_opts_default(&o, 1);
	o.queue_max_msgs = 0;
	t = raft_transport_new(base, 1, CLUSTER, NULL, &o, on_message, NULL, err, sizeof(err));
	assert_null(t);
	/* Address in use. */
	{
		int lfd = raw_listen(addr, sizeof(addr));

		t = raft_transport_new(base, 1, CLUSTER, addr, NULL, on_message, NULL, err,
				       sizeof(err));
		assert_null(t);
		assert_non_null(strstr(err, "cannot listen"));
		close(lfd);
	}
	/* No listener: dial only. */
	t = raft_transport_new(base, 1, CLUSTER, NULL, NULL, on_message, NULL, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(raft_transport_local_addr(t, addr, sizeof(addr)), -ENOENT);
	assert_int_equal(raft_transport_set_peer(t, 2, "[::1]:7000"), 0);
	assert_int_equal(raft_transport_set_peer(t, 2, "[::1]:7000"), 0); /* same again: no-op */
	assert_int_equal(raft_transport_peer_stats(t, 3, &(struct raft_transport_peer_stats){0}),
			 -ENOENT);
	raft_transport_free(t);
	raft_transport_free(NULL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_three_nodes_every_type),
	    cmocka_unit_test(test_simultaneous_dial),
	    cmocka_unit_test(test_duplicate_rules),
	    cmocka_unit_test(test_unknown_node_refused),
	    cmocka_unit_test(test_wrong_cluster_refused),
	    cmocka_unit_test(test_garbage_closes_connection),
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_reconnect),
	    cmocka_unit_test(test_queue_bound_peer_down),
	    cmocka_unit_test(test_queue_bound_slow_peer),
	    cmocka_unit_test(test_large_messages),
	    cmocka_unit_test(test_remove_from_callback),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
