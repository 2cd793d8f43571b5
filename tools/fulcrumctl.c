/* fulcrumctl: the operator CLI (docs/fulcrumctl.md); HTTP here, every decision in
 * controlplane/ctl.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "controlplane/ctl.h"

struct answer {
	long status;
	struct ctl_buf body;
	int code; /* CURLcode */
	char error[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	/* Refusing the bytes makes libcurl stop with CURLE_WRITE_ERROR: an
	 * answer over CTL_RESPONSE_MAX is never buffered whole. */
	return ctl_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* One request to one server; the answer (if any) lands in *ans. */
static enum ctl_attempt attempt(CURL *h, const struct ctl_cmd *cmd, const char *base,
				unsigned timeout_ms, struct answer *ans)
{
	char url[CTL_URL_MAX + CTL_PATH_MAX];
	char auth[CTL_TOKEN_MAX + 32];
	struct curl_slist *hdrs = NULL, *tmp;
	curl_off_t pretransfer = 0;
	int oom = 0;

	ctl_buf_free(&ans->body);
	ans->status = 0;
	ans->error[0] = '\0';
	snprintf(url, sizeof(url), "%s%s", base, cmd->path);

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Service names may be "." or "..": send the path exactly as built. */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CTL_RESPONSE_MAX);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans->body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ans->error);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "fulcrumctl/1");

#define ADD_HEADER(s)                                                                              \
	do {                                                                                       \
		tmp = curl_slist_append(hdrs, (s));                                                \
		if (tmp == NULL)                                                                   \
			oom = 1;                                                                   \
		else                                                                               \
			hdrs = tmp;                                                                \
	} while (0)
	ADD_HEADER("Accept: application/json");
	ADD_HEADER("Expect:"); /* no 100-continue round trip for small bodies */
	if (cmd->token[0] != '\0') {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cmd->token);
		ADD_HEADER(auth);
	}
	if (cmd->body != NULL)
		ADD_HEADER("Content-Type: application/json");
#undef ADD_HEADER
	if (oom) {
		curl_slist_free_all(hdrs);
		snprintf(ans->error, sizeof(ans->error), "out of memory");
		ans->code = CURLE_OUT_OF_MEMORY;
		return CTL_ATTEMPT_FAILED;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(cmd->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, cmd->method);
		if (cmd->body != NULL || strcmp(cmd->method, "POST") == 0) {
			const char *b = cmd->body != NULL ? cmd->body : "";

			curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(b));
		}
	}

	ans->code = (int)curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
	curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	curl_slist_free_all(hdrs);
	if (ans->error[0] == '\0')
		snprintf(ans->error, sizeof(ans->error), "%s", curl_easy_strerror(ans->code));
	if (ans->code == CURLE_WRITE_ERROR || ans->code == CURLE_FILESIZE_EXCEEDED)
		snprintf(ans->error, sizeof(ans->error), "the answer is larger than %u bytes",
			 (unsigned)CTL_RESPONSE_MAX);
	return ctl_attempt_classify(ans->code, pretransfer > 0, cmd->method);
}

/*
 * Try the servers in order from *first until one answers. Returns the
 * outcome of the last attempt; *first becomes the server that answered, so
 * a watch stays on it.
 */
static enum ctl_attempt ask(CURL *h, const struct ctl_cmd *cmd, unsigned timeout_ms,
			    unsigned *first, struct answer *ans)
{
	enum ctl_attempt a = CTL_ATTEMPT_NEXT;
	unsigned k, i;

	for (k = 0; k < cmd->servers.n; k++) {
		i = (*first + k) % cmd->servers.n;
		a = attempt(h, cmd, cmd->servers.base[i], timeout_ms, ans);
		if (a == CTL_ATTEMPT_NEXT) {
			fprintf(stderr, "fulcrumctl: %s: %s\n", cmd->servers.base[i], ans->error);
			continue;
		}
		if (a == CTL_ATTEMPT_UNKNOWN)
			fprintf(stderr,
				"fulcrumctl: %s: %s after the request was sent: it may or may not "
				"have been applied (check with a read before retrying)\n",
				cmd->servers.base[i], ans->error);
		else if (a == CTL_ATTEMPT_FAILED)
			fprintf(stderr, "fulcrumctl: %s: %s\n", cmd->servers.base[i], ans->error);
		*first = i;
		return a;
	}
	fprintf(stderr, "fulcrumctl: no server answered (tried %u)\n", cmd->servers.n);
	return a;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* endpoints --watch: print the list, then again each time its index moves. */
static int watch(CURL *h, struct ctl_cmd *cmd, struct answer *ans)
{
	unsigned first = 0;
	uint64_t index = 0, printed = 0;
	int have = 0, rc;
	enum ctl_attempt a;

	for (;;) {
		a = ask(h, cmd, cmd->timeout_ms + (have ? cmd->wait_ms : 0), &first, ans);
		if (a != CTL_ATTEMPT_ANSWERED)
			return ctl_exit_code(a, 0);
		if (ans->status < 200 || ans->status > 299)
			return ctl_render(cmd, ans->status, ans->body.data, ans->body.len, stdout,
					  stderr);
		if (ctl_response_index(ans->body.data, ans->body.len, &index) != 0) {
			fprintf(stderr, "fulcrumctl: the answer has no index to watch\n");
			return CTL_EXIT_REFUSED;
		}
		if (!have || index != printed) {
			rc = ctl_render(cmd, ans->status, ans->body.data, ans->body.len, stdout,
					stderr);
			if (rc != CTL_EXIT_OK)
				return rc;
			if (!cmd->json)
				fputc('\n', stdout);
			fflush(stdout);
			printed = index;
			have = 1;
		} else {
			/* Same index: the wait ran out. A server that answers at once
			 * anyway (older node) must not turn this into a busy loop. */
			nap_ms(200);
		}
		if (ctl_endpoints_path(cmd, index) != 0)
			return CTL_EXIT_REFUSED;
	}
}

int main(int argc, char **argv)
{
	struct ctl_cmd cmd;
	struct answer ans;
	char err[256];
	unsigned first = 0;
	enum ctl_attempt a;
	CURL *h;
	int rc;

	rc = ctl_parse(argc, argv, getenv("FULCRUM_SERVERS"), getenv("FULCRUM_TOKEN"), &cmd, err,
		       sizeof(err));
	if (rc == -EINVAL) {
		fprintf(stderr, "fulcrumctl: %s\n\n%s", err, cmd.help);
		return CTL_EXIT_USAGE;
	}
	if (rc != 0) {
		fprintf(stderr, "fulcrumctl: %s\n", strerror(-rc));
		return CTL_EXIT_REFUSED;
	}
	if (cmd.want_help) {
		fputs(cmd.help, stdout);
		return CTL_EXIT_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (h = curl_easy_init()) == NULL) {
		fprintf(stderr, "fulcrumctl: cannot initialise libcurl\n");
		ctl_cmd_free(&cmd);
		return CTL_EXIT_REFUSED;
	}
	memset(&ans, 0, sizeof(ans));
	if (cmd.watch) {
		rc = watch(h, &cmd, &ans);
	} else {
		unsigned timeout = cmd.timeout_ms;

		/* A single long-poll (--index) may legitimately take its wait. */
		if (cmd.op == CTL_OP_ENDPOINTS && strstr(cmd.path, "wait=") != NULL)
			timeout += cmd.wait_ms;
		a = ask(h, &cmd, timeout, &first, &ans);
		if (a == CTL_ATTEMPT_ANSWERED)
			rc = ctl_render(&cmd, ans.status, ans.body.data, ans.body.len, stdout,
					stderr);
		else
			rc = ctl_exit_code(a, 0);
	}
	ctl_buf_free(&ans.body);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	ctl_cmd_free(&cmd);
	return rc;
}
