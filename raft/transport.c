#include "raft/transport.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "raft/codec.h"

/*
 * Handshake record, the same 40 bytes both ways (little-endian):
 *   0 magic "FRFT"  4 u8 transport version  5 u8 kind  6 u8 status  7 u8 codec version
 *   8 u64 cluster id  16 u64 sender id  24 u64 id the sender expects at the other end
 *   32 u64 sender incarnation
 */
#define HELLO_LEN	  40
#define TRANSPORT_VERSION 1

static const uint8_t hello_magic[4] = {'F', 'R', 'F', 'T'};

enum hello_kind {
	HELLO_KIND_HELLO = 1, /* dialer -> acceptor */
	HELLO_KIND_ACK = 2,   /* acceptor -> dialer, status says accepted or why not */
};

enum conn_state {
	CONN_CONNECTING,  /* outbound: TCP connect in progress */
	CONN_WAIT_ACK,	  /* outbound: HELLO sent, waiting for the ACK */
	CONN_WAIT_HELLO,  /* inbound: waiting for the HELLO */
	CONN_ESTABLISHED, /* codec frames both ways */
	CONN_DRAINING, /* lost the duplicate rule: flush, half-close, read until the peer closes */
};

/* One encoded message waiting for a connection. */
struct qframe {
	struct qframe *next;
	size_t len;
	uint8_t data[];
};

struct peer;

struct conn {
	struct raft_transport *t;
	struct peer *peer; /* NULL while an inbound handshake is pending, and once closed */
	struct bufferevent *bev;
	struct conn *prev, *next; /* every connection of the transport */
	enum conn_state state;
	int outbound;
	int busy; /* inside our read callback: destruction waits until it returns */
	int dead;
	int shut;	      /* DRAINING: our write side is shut down */
	int eof;	      /* DRAINING: the peer shut down its write side */
	uint64_t incarnation; /* the peer's, from its HELLO or ACK */
	uint64_t established_ns;
};

struct peer {
	struct raft_transport *t;
	raft_id id;
	int has_addr;
	struct sockaddr_storage addr;
	int addrlen;
	struct conn *active; /* the established connection, if any */
	struct conn *dial;   /* our outbound attempt still in connect/handshake, if any */
	struct event *retry;
	uint32_t
	    attempt; /* failed attempts since the last stable connection: the backoff exponent */
	struct qframe *qhead, *qtail;
	struct raft_transport_peer_stats st;
};

struct raft_transport {
	struct event_base *base;
	raft_id self;
	uint64_t cluster;
	uint64_t incarnation;
	struct raft_transport_opts o;
	uint64_t rng;
	void (*on_message)(void *ctx, const struct raft_message *m);
	void *ctx;
	struct evconnlistener *listener;
	struct peer *peers[RAFT_TRANSPORT_MAX_PEERS];
	uint32_t n_peers;
	struct conn *conns;
	uint32_t n_pending_in;
	struct raft_transport_stats st;
};

/* ---------------------------------------------------------------- helpers */

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

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
						       ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Numeric "a.b.c.d:port" or "[v6]:port" (no DNS: it would block the loop).
 * Port 0 only where allowed (a listener picking a free port).
 */
static int parse_addr(const char *s, int port0_ok, struct sockaddr_storage *ss, int *len)
{
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t hl;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (!colon || colon == s || colon[1] == '\0')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno || port > 65535 || (port == 0 && !port0_ok) ||
	    !(colon[1] >= '0' && colon[1] <= '9'))
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (s[0] != '[') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (evutil_inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = (int)sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (evutil_inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = (int)sizeof(*s6);
	}
	return 0;
}

static void hello_put(uint8_t *h, uint8_t kind, uint8_t status, const struct raft_transport *t,
		      raft_id to)
{
	memcpy(h, hello_magic, 4);
	h[4] = TRANSPORT_VERSION;
	h[5] = kind;
	h[6] = status;
	h[7] = RAFT_CODEC_VERSION;
	put64(h + 8, t->cluster);
	put64(h + 16, t->self);
	put64(h + 24, to);
	put64(h + 32, t->incarnation);
}

static int hello_version_ok(const uint8_t *h, uint8_t kind)
{
	return memcmp(h, hello_magic, 4) == 0 && h[4] == TRANSPORT_VERSION && h[5] == kind &&
	       h[7] == RAFT_CODEC_VERSION;
}

/*
 * Small messages dominate (heartbeats, votes, acks), so Nagle would only add
 * latency. Keepalive and TCP_USER_TIMEOUT bound how long a connection to a
 * vanished host (power loss, partition) looks established: without them the
 * kernel would wait ~15 minutes of retransmissions, and the duplicate rule
 * could keep preferring such a dead connection.
 */
static void tune_socket(const struct raft_transport *t, evutil_socket_t fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t->o.keepalive_idle_s) {
		int idle = (int)t->o.keepalive_idle_s, intvl = 1, cnt = 3;

		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	if (t->o.tcp_user_timeout_ms) {
		unsigned int ut = t->o.tcp_user_timeout_ms;

		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	}
}

static void ms_to_tv(uint32_t ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static struct peer *peer_find(const struct raft_transport *t, raft_id id)
{
	for (uint32_t i = 0; i < t->n_peers; i++)
		if (t->peers[i]->id == id)
			return t->peers[i];
	return NULL;
}

static void qframe_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

static void queue_drop_all(struct peer *p)
{
	struct qframe *f = p->qhead, *n;

	for (; f; f = n) {
		n = f->next;
		free(f);
	}
	p->qhead = p->qtail = NULL;
	p->st.queue_msgs = 0;
	p->st.queue_bytes = 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void peer_schedule(struct peer *p);

static struct conn *conn_new(struct raft_transport *t, struct bufferevent *bev, int outbound,
			     enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct timeval tv;

	if (!c)
		return NULL;
	c->t = t;
	c->bev = bev;
	c->outbound = outbound;
	c->state = state;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* A silent or slow dialer must not hold a handshake slot forever. */
	ms_to_tv(t->o.handshake_timeout_ms, &tv);
	bufferevent_set_timeouts(bev, &tv, &tv);
	return c;
}

static void conn_destroy(struct conn *c)
{
	struct raft_transport *t = c->t;

	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* Frees any frames still referenced by the output buffer (qframe_cleanup). */
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Detaches c from its peer and closes it. Bytes already handed to it and not
 * yet written are lost, which Raft tolerates (the leader resends from
 * nextIndex). Inside c's own read callback the memory stays until the
 * callback unwinds.
 */
static void conn_close(struct conn *c)
{
	struct peer *p = c->peer;

	if (c->dead)
		return;
	if (p) {
		if (p->active == c || c->state == CONN_DRAINING)
			p->st.lost_bytes += evbuffer_get_length(bufferevent_get_output(c->bev));
		if (p->active == c)
			p->active = NULL;
		if (p->dial == c)
			p->dial = NULL;
		c->peer = NULL;
	}
	if (!c->outbound && c->state == CONN_WAIT_HELLO)
		c->t->n_pending_in--;
	c->dead = 1;
	if (c->busy) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	conn_destroy(c);
}

/* The connection broke or its handshake failed: count it and plan the next dial. */
static void conn_fail(struct conn *c)
{
	struct peer *p = c->peer;

	if (c->dead)
		return;
	if (p && p->active == c) {
		p->st.disconnects++;
		/* Only a connection that held for a while proves the peer healthy; a
		 * peer that accepts and drops at once keeps backing off. */
		if (now_ns() - c->established_ns >= (uint64_t)p->t->o.backoff_max_ms * 1000000u)
			p->attempt = 0;
	} else if (p && p->dial == c) {
		p->st.dial_failures++;
	}
	conn_close(c);
	if (p)
		peer_schedule(p);
}

/* Moves queued frames to the connection while its output is below the high-water mark. */
static void peer_flush(struct peer *p)
{
	struct conn *c = p->active;
	struct evbuffer *out;
	struct qframe *f;

	if (!c || c->dead)
		return;
	out = bufferevent_get_output(c->bev);
	while ((f = p->qhead) != NULL && evbuffer_get_length(out) < p->t->o.out_high_bytes) {
		p->qhead = f->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->st.queue_msgs--;
		p->st.queue_bytes -= f->len;
		if (evbuffer_add_reference(out, f->data, f->len, qframe_cleanup, f) < 0) {
			free(f);
			p->st.drops_nomem++;
			continue;
		}
		p->st.msgs_sent++;
		p->st.bytes_sent += f->len;
	}
}

/*
 * Which of two established connections to the same peer survives. Both ends
 * must pick the same one without talking, so the rule uses only what both
 * know: the dialer of each connection and the peer's incarnation.
 *  1. Different incarnations: the peer restarted, the old connection is a
 *     leftover (its RST may not have arrived yet). The new one wins.
 *  2. Different dialers: the connection dialed by the lower node id wins.
 *  3. Same dialer: it only redials after dropping its previous connection,
 *     so the new one wins.
 */
static int conn_beats(const struct peer *p, const struct conn *nc, const struct conn *old)
{
	raft_id dn, dold;

	if (nc->incarnation != old->incarnation)
		return 1;
	dn = nc->outbound ? p->t->self : p->id;
	dold = old->outbound ? p->t->self : p->id;
	if (dn != dold)
		return dn < dold;
	return 1;
}

/*
 * Takes c out of service without losing what is in flight: frames already
 * handed to it are still written, then our side is shut down; frames the
 * peer sent before it retired the same connection are still delivered. The
 * peer applies the same rule, so it half-closes too and both ends see EOF.
 * The timeout covers a peer that is gone.
 */
static void conn_retire(struct conn *c)
{
	struct peer *p = c->peer;
	struct timeval tv;

	if (p->active == c)
		p->active = NULL;
	if (p->dial == c)
		p->dial = NULL;
	c->state = CONN_DRAINING;
	ms_to_tv(p->t->o.handshake_timeout_ms, &tv);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		c->shut = 1;
	}
}

/* c (attached to its peer) finished its handshake. */
static void conn_established(struct conn *c)
{
	struct peer *p = c->peer;
	struct conn *old = p->active;

	c->state = CONN_ESTABLISHED;
	c->established_ns = now_ns();
	/* Liveness from here on is TCP keepalive / user timeout: Raft may be idle. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_setwatermark(c->bev, EV_WRITE, p->t->o.out_high_bytes / 2, 0);
	if (p->dial == c)
		p->dial = NULL;
	p->st.connects++;
	if (old) {
		p->st.duplicates_closed++;
		if (!conn_beats(p, c, old)) {
			conn_retire(c);
			return;
		}
		conn_retire(old);
	}
	p->active = c;
	evtimer_del(p->retry);
	p->st.backoff_ms = 0;
	peer_flush(p);
}

/* Acceptor side: check the dialer's HELLO, answer, attach. */
static void conn_on_hello(struct conn *c, const uint8_t *h)
{
	struct raft_transport *t = c->t;
	uint8_t ack[HELLO_LEN];
	uint8_t status = RAFT_TRANSPORT_OK;
	raft_id from = get64(h + 16);
	struct peer *p = NULL;

	if (!hello_version_ok(h, HELLO_KIND_HELLO)) {
		t->st.refused_version++;
		status = RAFT_TRANSPORT_REFUSED_VERSION;
	} else if (get64(h + 8) != t->cluster) {
		t->st.refused_cluster++;
		status = RAFT_TRANSPORT_REFUSED_CLUSTER;
	} else if (get64(h + 24) != t->self) {
		t->st.refused_misaddressed++;
		status = RAFT_TRANSPORT_REFUSED_MISADDRESSED;
	} else if ((p = peer_find(t, from)) == NULL) {
		t->st.refused_unknown++;
		status = RAFT_TRANSPORT_REFUSED_UNKNOWN;
	}
	hello_put(ack, HELLO_KIND_ACK, status, t, from);
	if (status != RAFT_TRANSPORT_OK) {
		/* Written straight to the socket: nothing else was ever queued on
		 * it, and the bufferevent is freed right away. Best effort. */
		(void)send(bufferevent_getfd(c->bev), ack, sizeof(ack),
			   MSG_NOSIGNAL | MSG_DONTWAIT);
		conn_close(c);
		return;
	}
	t->n_pending_in--;
	c->state = CONN_ESTABLISHED;
	c->peer = p;
	c->incarnation = get64(h + 32);
	if (bufferevent_write(c->bev, ack, sizeof(ack)) < 0) {
		conn_close(c);
		return;
	}
	conn_established(c);
}

/* Dialer side: check the acceptor's ACK. */
static void conn_on_ack(struct conn *c, const uint8_t *h)
{
	struct raft_transport *t = c->t;
	struct peer *p = c->peer;

	if (!hello_version_ok(h, HELLO_KIND_ACK)) {
		p->st.peer_mismatch++;
		conn_fail(c);
		return;
	}
	if (h[6] != RAFT_TRANSPORT_OK) {
		p->st.refused_by_peer++;
		p->st.last_refusal = h[6];
		conn_fail(c);
		return;
	}
	if (get64(h + 8) != t->cluster || get64(h + 16) != p->id || get64(h + 24) != t->self) {
		p->st.peer_mismatch++;
		conn_fail(c);
		return;
	}
	c->incarnation = get64(h + 32);
	conn_established(c);
}

/* A bad frame: close the connection (never the process), count it, redial later. */
static void conn_bad_frame(struct conn *c, int misrouted)
{
	struct peer *p = c->peer;

	if (misrouted) {
		p->st.misrouted++;
	} else {
		p->st.decode_errors++;
		c->t->st.decode_errors++;
	}
	conn_fail(c);
}

/* Splits the byte stream into frames and delivers each decoded message. */
static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct raft_transport *t = c->t;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->busy = 1;
	while (!c->dead) {
		uint8_t hdr[HELLO_LEN];
		size_t avail = evbuffer_get_length(in), flen;
		struct raft_message m;
		struct peer *p;
		uint8_t *buf;
		int rc;

		if (c->state == CONN_WAIT_HELLO || c->state == CONN_WAIT_ACK) {
			if (avail < HELLO_LEN)
				break;
			evbuffer_remove(in, hdr, HELLO_LEN);
			if (c->state == CONN_WAIT_HELLO)
				conn_on_hello(c, hdr);
			else
				conn_on_ack(c, hdr);
			continue;
		}
		if ((c->state != CONN_ESTABLISHED && c->state != CONN_DRAINING) || avail < 5)
			break;
		p = c->peer;
		evbuffer_copyout(in, hdr, 5);
		rc = raft_codec_frame_len(hdr, 5, &flen);
		if (rc < 0) {
			conn_bad_frame(c, 0);
			break;
		}
		if (avail < flen)
			break;
		buf = evbuffer_pullup(in, (ev_ssize_t)flen);
		if (!buf) {
			conn_fail(c); /* out of memory: drop the connection, not the process */
			break;
		}
		rc = raft_codec_decode(buf, flen, &m);
		if (rc < 0) {
			conn_bad_frame(c, 0);
			break;
		}
		if (m.from != p->id || m.to != t->self) {
			raft_codec_release(&m);
			conn_bad_frame(c, 1);
			break;
		}
		p->st.msgs_recv++;
		p->st.bytes_recv += flen;
		/* May close c or remove p: neither is touched again if c died. */
		t->on_message(t->ctx, &m);
		raft_codec_release(&m);
		if (!c->dead)
			evbuffer_drain(in, flen);
	}
	c->busy = 0;
	if (c->dead)
		conn_destroy(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->dead || !c->peer)
		return;
	if (c->state == CONN_DRAINING && !c->shut &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		c->shut = 1;
		if (c->eof)
			conn_close(c);
	} else if (c->peer->active == c) {
		peer_flush(c->peer);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	uint8_t h[HELLO_LEN];

	if (c->dead)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		tune_socket(c->t, bufferevent_getfd(bev));
		hello_put(h, HELLO_KIND_HELLO, RAFT_TRANSPORT_OK, c->t, c->peer->id);
		c->state = CONN_WAIT_ACK;
		if (bufferevent_write(bev, h, sizeof(h)) < 0)
			conn_fail(c);
		return;
	}
	if (c->state == CONN_DRAINING) {
		/* The peer finished its half; ours may still be flushing. */
		if ((what & BEV_EVENT_EOF) && !c->shut) {
			c->eof = 1;
			return;
		}
		conn_close(c); /* the expected end of a retired duplicate, or its timeout */
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->state != CONN_ESTABLISHED && !c->outbound)
		c->t->st.handshake_timeouts++;
	conn_fail(c);
}

/* ---------------------------------------------------------------- dialing */

static void peer_dial(struct peer *p)
{
	struct raft_transport *t = p->t;
	struct bufferevent *bev;
	struct conn *c;

	p->st.backoff_ms = 0;
	if (!p->has_addr || p->active || p->dial)
		return;
	p->st.dials++;
	bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev)
		goto fail;
	c = conn_new(t, bev, 1, CONN_CONNECTING);
	if (!c) {
		bufferevent_free(bev);
		goto fail;
	}
	c->peer = p;
	p->dial = c;
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* An immediate refusal is reported through the (deferred) event callback. */
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&p->addr, p->addrlen) < 0)
		conn_fail(c);
	return;
fail:
	p->st.dial_failures++;
	peer_schedule(p);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peer_dial(arg);
}

/*
 * Plans the next dial: min << attempt capped at max, then "equal jitter"
 * (a uniform draw in [d/2, d]) so that nodes restarted together do not
 * redial in lockstep.
 */
static void peer_schedule(struct peer *p)
{
	struct raft_transport *t = p->t;
	uint64_t d, w;
	struct timeval tv;

	if (!p->has_addr || p->active || p->dial || evtimer_pending(p->retry, NULL))
		return;
	d = (uint64_t)t->o.backoff_min_ms << (p->attempt < 20 ? p->attempt : 20);
	if (d > t->o.backoff_max_ms)
		d = t->o.backoff_max_ms;
	w = d / 2 + splitmix64(&t->rng) % (d - d / 2 + 1);
	if (p->attempt < 32)
		p->attempt++;
	p->st.backoff_ms = (uint32_t)w;
	ms_to_tv((uint32_t)w, &tv);
	evtimer_add(p->retry, &tv);
}

static void peer_dial_soon(struct peer *p)
{
	struct timeval tv = {0, 0};

	if (p->has_addr && !p->active && !p->dial)
		evtimer_add(p->retry, &tv);
}

/* ---------------------------------------------------------------- accepting */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct raft_transport *t = arg;
	struct bufferevent *bev;
	struct conn *c;

	(void)l;
	(void)sa;
	(void)salen;
	t->st.accepted++;
	if (t->n_pending_in >= t->o.max_pending_inbound) {
		t->st.refused_busy++;
		evutil_closesocket(fd);
		return;
	}
	tune_socket(t, fd);
	bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	c = conn_new(t, bev, 0, CONN_WAIT_HELLO);
	if (!c) {
		bufferevent_free(bev);
		return;
	}
	t->n_pending_in++;
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct raft_transport *t = arg;

	(void)l;
	t->st.accept_errors++;
}

/* ---------------------------------------------------------------- API */

void raft_transport_opts_default(struct raft_transport_opts *o, uint64_t seed)
{
	memset(o, 0, sizeof(*o));
	o->seed = seed;
	o->backoff_min_ms = 50;
	o->backoff_max_ms = 2000;
	o->queue_max_msgs = 4096;
	o->queue_max_bytes = 16u << 20;
	o->out_high_bytes = 256u << 10;
	o->handshake_timeout_ms = 2000;
	o->max_pending_inbound = 64;
	o->keepalive_idle_s = 2;
	o->tcp_user_timeout_ms = 5000;
}

struct raft_transport *
raft_transport_new(struct event_base *base, raft_id self, uint64_t cluster_id,
		   const char *listen_addr, const struct raft_transport_opts *opts,
		   void (*on_message)(void *ctx, const struct raft_message *m), void *ctx,
		   char *err, size_t errlen)
{
	struct raft_transport *t;
	struct sockaddr_storage ss;
	struct sigaction sa;
	int sslen;

	if (!base || self == RAFT_ID_NONE || !on_message) {
		errf(err, errlen, "base, self and on_message are required");
		return NULL;
	}
	if (opts && (opts->backoff_min_ms == 0 || opts->backoff_max_ms < opts->backoff_min_ms ||
		     opts->queue_max_msgs == 0 || opts->queue_max_bytes == 0 ||
		     opts->out_high_bytes == 0 || opts->handshake_timeout_ms == 0)) {
		errf(err, errlen, "invalid transport options");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	t->base = base;
	t->self = self;
	t->cluster = cluster_id;
	if (opts)
		t->o = *opts;
	else
		raft_transport_opts_default(&t->o, self);
	t->rng = t->o.seed;
	t->incarnation = t->o.incarnation;
	if (t->incarnation == 0) {
		/* Only has to differ from the previous run of this node. */
		uint64_t s = now_ns() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)t;
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s ^= (uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec;
		t->incarnation = splitmix64(&s) | 1;
	}
	t->on_message = on_message;
	t->ctx = ctx;
	/*
	 * libevent writes with writev(), which raises SIGPIPE on a connection
	 * the peer reset; the default action would kill the daemon. Only a
	 * default disposition is changed: a handler the application installed
	 * stays.
	 */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	if (listen_addr) {
		if (parse_addr(listen_addr, 1, &ss, &sslen) < 0) {
			errf(err, errlen, "bad listen address '%s' (numeric host:port)",
			     listen_addr);
			free(t);
			return NULL;
		}
		t->listener = evconnlistener_new_bind(base, accept_cb, t,
						      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
							  LEV_OPT_CLOSE_ON_EXEC,
						      -1, (struct sockaddr *)&ss, sslen);
		if (!t->listener) {
			errf(err, errlen, "cannot listen on %s: %s", listen_addr, strerror(errno));
			free(t);
			return NULL;
		}
		evconnlistener_set_error_cb(t->listener, accept_error_cb);
	}
	return t;
}

void raft_transport_free(struct raft_transport *t)
{
	if (!t)
		return;
	if (t->listener)
		evconnlistener_free(t->listener);
	while (t->conns)
		conn_destroy(t->conns);
	for (uint32_t i = 0; i < t->n_peers; i++) {
		queue_drop_all(t->peers[i]);
		event_free(t->peers[i]->retry);
		free(t->peers[i]);
	}
	free(t);
}

int raft_transport_local_addr(const struct raft_transport *t, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64];
	unsigned port;
	int n;

	if (!t || !buf)
		return -EINVAL;
	if (!t->listener)
		return -ENOENT;
	if (getsockname(evconnlistener_get_fd(t->listener), (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		n = snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		n = snprintf(buf, len, "%s:%u", host, port);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int raft_transport_set_peer(struct raft_transport *t, raft_id id, const char *addr)
{
	struct sockaddr_storage ss;
	int sslen = 0;
	struct peer *p;

	if (!t || id == RAFT_ID_NONE || id == t->self)
		return -EINVAL;
	memset(&ss, 0, sizeof(ss));
	if (addr && parse_addr(addr, 0, &ss, &sslen) < 0)
		return -EINVAL;
	p = peer_find(t, id);
	if (p) {
		if (p->has_addr == (addr != NULL) &&
		    (!addr || (p->addrlen == sslen && memcmp(&p->addr, &ss, (size_t)sslen) == 0)))
			return 0;
		p->has_addr = addr != NULL;
		p->addr = ss;
		p->addrlen = sslen;
		/* Our connections went to the old address; the peer's own dial to us is still good.
		 */
		if (p->dial)
			conn_close(p->dial);
		if (p->active && p->active->outbound)
			conn_close(p->active);
		p->attempt = 0;
		evtimer_del(p->retry);
		p->st.backoff_ms = 0;
		peer_dial_soon(p);
		return 0;
	}
	if (t->n_peers == RAFT_TRANSPORT_MAX_PEERS)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->retry = evtimer_new(t->base, retry_cb, p);
	if (!p->retry) {
		free(p);
		return -ENOMEM;
	}
	p->t = t;
	p->id = id;
	p->st.id = id;
	p->has_addr = addr != NULL;
	p->addr = ss;
	p->addrlen = sslen;
	t->peers[t->n_peers++] = p;
	peer_dial_soon(p);
	return 0;
}

int raft_transport_remove_peer(struct raft_transport *t, raft_id id)
{
	struct peer *p;
	uint32_t i;

	if (!t)
		return -EINVAL;
	for (i = 0; i < t->n_peers && t->peers[i]->id != id; i++)
		;
	if (i == t->n_peers)
		return -ENOENT;
	p = t->peers[i];
	t->peers[i] = t->peers[--t->n_peers];
	for (struct conn *c = t->conns, *n; c; c = n) {
		n = c->next;
		if (c->peer == p)
			conn_close(c);
	}
	queue_drop_all(p);
	event_free(p->retry);
	free(p);
	return 0;
}

int raft_transport_send(struct raft_transport *t, const struct raft_message *m)
{
	struct qframe *f;
	struct peer *p;
	size_t len;
	int rc;

	if (!t || !m || m->from != t->self || m->to == t->self)
		return -EINVAL;
	p = peer_find(t, m->to);
	if (!p)
		return -ENOENT;
	rc = raft_codec_size(m, &len);
	if (rc < 0)
		return rc;
	f = malloc(sizeof(*f) + len);
	if (!f) {
		p->st.drops_nomem++;
		return -ENOMEM;
	}
	rc = raft_codec_encode(m, f->data, len, &len);
	if (rc < 0) {
		free(f);
		return rc;
	}
	f->len = len;
	f->next = NULL;
	/* Full: evict the oldest. A stale heartbeat or append is worth less than
	 * the newest message, which carries the current term and commit index. */
	while (p->qhead && (p->st.queue_msgs >= t->o.queue_max_msgs ||
			    p->st.queue_bytes + len > t->o.queue_max_bytes)) {
		struct qframe *old = p->qhead;

		p->qhead = old->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->st.queue_msgs--;
		p->st.queue_bytes -= old->len;
		p->st.drops_queue_full++;
		free(old);
	}
	if (p->qtail)
		p->qtail->next = f;
	else
		p->qhead = f;
	p->qtail = f;
	p->st.queue_msgs++;
	p->st.queue_bytes += len;
	peer_flush(p);
	return 0;
}

int raft_transport_peer_stats(const struct raft_transport *t, raft_id id,
			      struct raft_transport_peer_stats *st)
{
	const struct peer *p;

	if (!t || !st)
		return -EINVAL;
	p = peer_find(t, id);
	if (!p)
		return -ENOENT;
	*st = p->st;
	st->connected = p->active != NULL;
	st->dialed_by_us = p->active ? p->active->outbound : 0;
	st->out_bytes = p->active ? evbuffer_get_length(bufferevent_get_output(p->active->bev)) : 0;
	if (!evtimer_pending(p->retry, NULL))
		st->backoff_ms = 0;
	return 0;
}

void raft_transport_stats(const struct raft_transport *t, struct raft_transport_stats *st)
{
	const struct conn *c;

	*st = t->st;
	st->peers = t->n_peers;
	st->conns_established = 0;
	st->conns_handshaking = 0;
	st->conns_draining = 0;
	for (c = t->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->state == CONN_ESTABLISHED)
			st->conns_established++;
		else if (c->state == CONN_DRAINING)
			st->conns_draining++;
		else
			st->conns_handshaking++;
	}
}

const char *raft_transport_refusal_name(unsigned reason)
{
	switch (reason) {
	case RAFT_TRANSPORT_OK:
		return "ok";
	case RAFT_TRANSPORT_REFUSED_UNKNOWN:
		return "unknown node";
	case RAFT_TRANSPORT_REFUSED_CLUSTER:
		return "wrong cluster";
	case RAFT_TRANSPORT_REFUSED_VERSION:
		return "unsupported version";
	case RAFT_TRANSPORT_REFUSED_MISADDRESSED:
		return "misaddressed";
	default:
		return "unknown reason";
	}
}
