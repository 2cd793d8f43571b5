/*
 * bench_regclient: the failover client of tools/bench/cluster.sh (issue 5 §8).
 *
 * It writes to the survivors of a 3-node cluster every few ms, kills the
 * leader with SIGKILL at a random moment and measures the time from the kill
 * to the first write that succeeds after it. The same client drives fulcrum
 * (a backend registration, POST /v1/services/NAME/backends) and etcd 3.4
 * (POST /v3/kv/put through the JSON gateway, key and value base64).
 *
 * Usage (cluster.sh passes everything; run alone it prints this and exits 0,
 * because `make bench` runs every bench binary without arguments):
 *   bench_regclient failover --kind fulcrum|etcd --pid PID
 *       --targets HOST:PORT[,HOST:PORT...] [--token T] [--service NAME]
 *       [--seed N] [--interval-ms 5] [--pre-ms 300] [--pre-jitter-ms 500]
 *       [--deadline-ms 10000]
 *
 * A write is one HTTP/1.1 request on its own TCP connection (Connection:
 * close), so a request stuck at a node whose leader is gone never holds up the
 * next one: every interval a new request goes to the next target, round
 * robin, whatever the earlier ones are doing. Before the kill the client
 * writes for pre-ms + a random part of pre-jitter-ms (splitmix64 from --seed,
 * so a trial is repeatable up to the machine's timing), which puts the kill
 * at a random point of the leader's heartbeat interval. The clock is read
 * right before kill(2). Success = a 2xx status (and, for etcd, no "error" in
 * the body: the gateway answers gRPC errors with non-2xx codes, the check is
 * a second guard) for a request whose connect started after the kill; the
 * time is taken when its whole response has arrived.
 *
 * Output, one line: "FAILOVER ms=<float> sent=<n> ok=<n> fail=<n> before=<n>"
 * (ms=-1 when nothing succeeded within --deadline-ms). Exit status: 0
 * measured, 1 nothing succeeded in time, 2 usage or system error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS  8
#define MAX_INFLIGHT 1024
#define REQ_MAX	     1024
#define RESP_MAX     8192
#define REQ_TIMEOUT_NS (3000 * 1000000LL) /* a request older than this is abandoned */

enum kind { KIND_FULCRUM, KIND_ETCD };

struct conn {
	int fd;		  /* -1 = free slot */
	int64_t start_ns; /* connect() time */
	bool after_kill;  /* started after the kill */
	bool connected;
	size_t sent, req_len, resp_len;
	char req[REQ_MAX];
	char resp[RESP_MAX];
};

struct opts {
	enum kind kind;
	pid_t pid;
	struct sockaddr_in targets[MAX_TARGETS];
	char target_names[MAX_TARGETS][64];
	int n_targets;
	const char *token;
	const char *service;
	uint64_t seed;
	int interval_ms, pre_ms, pre_jitter_ms, deadline_ms;
};

static struct conn conns[MAX_INFLIGHT];
/* The first failed answer (status line and body start), for the report. */
static char first_fail[160];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* RFC 4648 §4 base64 of n bytes into out (NUL-terminated); returns its length. */
static size_t base64(const char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* The n-th write of this trial: distinct backend address (fulcrum) or key (etcd). */
static int build_request(const struct opts *o, int target, unsigned n, char *buf, size_t cap)
{
	char body[512];
	/* Same shape and length as cluster_reg.lua's body. */
	char reg[128];
	snprintf(reg, sizeof(reg), "{\"address\":\"10.%u.%u.%u\",\"port\":%u}",
		 100 + (unsigned)(o->seed % 100), 100 + (n / 100) % 100, 100 + n % 100,
		 10000 + n / 10000);
	char path[128];
	int blen;
	if (o->kind == KIND_FULCRUM) {
		snprintf(path, sizeof(path), "/v1/services/%s/backends", o->service);
		blen = snprintf(body, sizeof(body), "%s", reg);
	} else {
		char key[96], k64[160], v64[200];
		int klen = snprintf(key, sizeof(key), "/failover/%llu/%u",
				    (unsigned long long)o->seed, n);
		base64(key, (size_t)klen, k64);
		base64(reg, strlen(reg), v64);
		snprintf(path, sizeof(path), "/v3/kv/put");
		blen = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
	}
	char auth[160] = "";
	if (o->token != NULL && o->token[0] != '\0')
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", o->token);
	int len = snprintf(buf, cap,
			   "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
			   "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			   path, o->target_names[target], auth, blen, body);
	return len > 0 && (size_t)len < cap ? len : -ENOSPC;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int conn_start(const struct opts *o, int target, unsigned n, bool after_kill)
{
	struct conn *c = NULL;
	for (int i = 0; i < MAX_INFLIGHT; i++)
		if (conns[i].fd < 0) {
			c = &conns[i];
			break;
		}
	if (c == NULL)
		return -ENOSPC;
	int len = build_request(o, target, n, c->req, sizeof(c->req));
	if (len < 0)
		return len;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->start_ns = now_ns();
	c->after_kill = after_kill;
	c->connected = false;
	c->sent = 0;
	c->req_len = (size_t)len;
	c->resp_len = 0;
	if (connect(fd, (const struct sockaddr *)&o->targets[target], sizeof(o->targets[0])) ==
	    0)
		c->connected = true;
	else if (errno != EINPROGRESS) {
		conn_close(c);
		return 1; /* refused at once: a failed write, not an error of ours */
	}
	return 0;
}

/* 1 = success, 0 = not finished, -1 = finished without success. */
static int conn_step(struct conn *c, short revents, enum kind kind)
{
	if (!c->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
			return -1;
		if (!(revents & POLLOUT))
			return 0;
		c->connected = true;
	}
	while (c->sent < c->req_len) {
		ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->sent += (size_t)w;
	}
	for (;;) {
		if (c->resp_len + 1 >= sizeof(c->resp))
			break; /* enough to judge; the rest does not matter */
		ssize_t r = recv(c->fd, c->resp + c->resp_len, sizeof(c->resp) - 1 - c->resp_len, 0);
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (r == 0)
			break;
		c->resp_len += (size_t)r;
	}
	c->resp[c->resp_len] = '\0';
	int status = 0;
	if (sscanf(c->resp, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	if ((status < 200 || status > 299) && first_fail[0] == '\0') {
		const char *b = strstr(c->resp, "\r\n\r\n");
		snprintf(first_fail, sizeof(first_fail), "%d %.120s", status, b ? b + 4 : "");
		for (char *q = first_fail; *q; q++)
			if (*q == '\n' || *q == '\r' || *q == ' ')
				*q = '_';
	}
	if (status < 200 || status > 299)
		return -1;
	if (kind == KIND_ETCD && strstr(c->resp, "\"error\"") != NULL)
		return -1;
	return 1;
}

static int parse_targets(struct opts *o, const char *list)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (o->n_targets == MAX_TARGETS)
			return -EINVAL;
		char *colon = strrchr(t, ':');
		if (colon == NULL)
			return -EINVAL;
		*colon = '\0';
		struct sockaddr_in *sa = &o->targets[o->n_targets];
		memset(sa, 0, sizeof(*sa));
		sa->sin_family = AF_INET;
		long port = strtol(colon + 1, NULL, 10);
		if (port <= 0 || port > 65535 || inet_pton(AF_INET, t, &sa->sin_addr) != 1)
			return -EINVAL;
		sa->sin_port = htons((uint16_t)port);
		snprintf(o->target_names[o->n_targets], sizeof(o->target_names[0]), "%s:%ld", t,
			 port);
		o->n_targets++;
	}
	return o->n_targets > 0 ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "bench_regclient: the failover client of tools/bench/cluster.sh "
		   "(run `make bench BENCH=cluster`).\n"
		   "usage: bench_regclient failover --kind fulcrum|etcd --pid PID "
		   "--targets HOST:PORT[,...]\n"
		   "       [--token T] [--service NAME] [--seed N] [--interval-ms 5] "
		   "[--pre-ms 300]\n"
		   "       [--pre-jitter-ms 500] [--deadline-ms 10000]\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = KIND_FULCRUM;
	o->seed = 1;
	o->interval_ms = 5;
	o->pre_ms = 300;
	o->pre_jitter_ms = 500;
	o->deadline_ms = 10000;
	o->service = "failover";
	bool have_targets = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return -EINVAL;
		i++;
		if (strcmp(a, "--kind") == 0) {
			if (strcmp(v, "fulcrum") == 0)
				o->kind = KIND_FULCRUM;
			else if (strcmp(v, "etcd") == 0)
				o->kind = KIND_ETCD;
			else
				return -EINVAL;
		} else if (strcmp(a, "--pid") == 0) {
			o->pid = (pid_t)strtol(v, NULL, 10);
		} else if (strcmp(a, "--targets") == 0) {
			if (parse_targets(o, v) != 0)
				return -EINVAL;
			have_targets = true;
		} else if (strcmp(a, "--token") == 0) {
			o->token = v;
		} else if (strcmp(a, "--service") == 0) {
			o->service = v;
		} else if (strcmp(a, "--seed") == 0) {
			o->seed = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--interval-ms") == 0) {
			o->interval_ms = atoi(v);
		} else if (strcmp(a, "--pre-ms") == 0) {
			o->pre_ms = atoi(v);
		} else if (strcmp(a, "--pre-jitter-ms") == 0) {
			o->pre_jitter_ms = atoi(v);
		} else if (strcmp(a, "--deadline-ms") == 0) {
			o->deadline_ms = atoi(v);
		} else {
			return -EINVAL;
		}
	}
	if (o->pid <= 1 || !have_targets || o->interval_ms < 1 || o->pre_ms < 0 ||
	    o->pre_jitter_ms < 0 || o->deadline_ms < 1)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout); /* `make bench` runs every bench binary bare: not a failure */
		return 0;
	}
	struct opts o;
	if (strcmp(argv[1], "failover") != 0 || parse_args(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAX_INFLIGHT; i++)
		conns[i].fd = -1;

	uint64_t rng = o.seed * 0x2545f4914f6cdd1dULL + 7;
	int64_t t_start = now_ns();
	int64_t kill_at = t_start + (int64_t)o.pre_ms * 1000000LL +
			  (o.pre_jitter_ms > 0
				   ? (int64_t)(splitmix64(&rng) % ((uint64_t)o.pre_jitter_ms * 1000u)) *
					     1000LL
				   : 0);
	int64_t t_kill = 0, t_ok = 0;
	int64_t next_send = t_start;
	unsigned n = 0, ok = 0, failed = 0, ok_before = 0;
	int target = 0;
	struct pollfd pfd[MAX_INFLIGHT];
	int idx[MAX_INFLIGHT];

	for (;;) {
		int64_t now = now_ns();
		if (t_kill == 0 && now >= kill_at) {
			t_kill = now_ns();
			if (kill(o.pid, SIGKILL) != 0) {
				fprintf(stderr, "bench_regclient: kill %d: %s\n", (int)o.pid,
					strerror(errno));
				return 2;
			}
		}
		if (t_kill != 0 && now - t_kill > (int64_t)o.deadline_ms * 1000000LL)
			break;
		if (now >= next_send) {
			int rc = conn_start(&o, target, n++, t_kill != 0);
			if (rc < 0 && rc != -ENOSPC) {
				fprintf(stderr, "bench_regclient: %s\n", strerror(-rc));
				return 2;
			}
			if (rc == 1)
				failed++;
			target = (target + 1) % o.n_targets;
			next_send += (int64_t)o.interval_ms * 1000000LL;
			if (next_send < now)
				next_send = now; /* fell behind (a slow machine): do not burst */
		}
		int np = 0;
		for (int i = 0; i < MAX_INFLIGHT; i++) {
			if (conns[i].fd < 0)
				continue;
			if (now - conns[i].start_ns > REQ_TIMEOUT_NS) {
				conn_close(&conns[i]);
				failed++;
				continue;
			}
			pfd[np].fd = conns[i].fd;
			pfd[np].events = conns[i].connected && conns[i].sent == conns[i].req_len
						 ? POLLIN
						 : POLLOUT;
			pfd[np].revents = 0;
			idx[np++] = i;
		}
		int64_t wake = next_send;
		if (t_kill == 0 && kill_at < wake)
			wake = kill_at;
		int timeout_ms = (int)((wake - now_ns() + 999999) / 1000000);
		if (timeout_ms < 0)
			timeout_ms = 0;
		if (poll(pfd, (nfds_t)np, timeout_ms) < 0 && errno != EINTR) {
			perror("bench_regclient: poll");
			return 2;
		}
		for (int k = 0; k < np; k++) {
			if (pfd[k].revents == 0)
				continue;
			struct conn *c = &conns[idx[k]];
			int r = conn_step(c, pfd[k].revents, o.kind);
			if (r == 0)
				continue;
			int64_t done = now_ns();
			if (r > 0) {
				ok++;
				if (!c->after_kill)
					ok_before++;
				else if (t_ok == 0)
					t_ok = done;
			} else {
				failed++;
			}
			conn_close(c);
		}
		if (t_ok != 0)
			break;
	}
	for (int i = 0; i < MAX_INFLIGHT; i++)
		conn_close(&conns[i]);
	double ms = t_ok != 0 ? (double)(t_ok - t_kill) / 1e6 : -1.0;
	printf("FAILOVER ms=%.1f sent=%u ok=%u fail=%u before=%u first_fail=%s\n", ms, n, ok,
	       failed, ok_before, first_fail[0] ? first_fail : "none");
	return t_ok != 0 ? 0 : 1;
}
