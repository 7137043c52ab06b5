/* s3_harness.h - helpers of the S3 backend tests: start the pinned s3rver
 * (tests/s3/start-s3rver.sh) and the fault-injecting proxy (tests/s3/fault_proxy.py)
 * as child processes that print their port on their first stdout line, stop them,
 * and fetch a URL. A helper that cannot start is a test FAILURE, never a skip. */
#ifndef CAIRN_S3_HARNESS_H
#define CAIRN_S3_HARNESS_H

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct child {
	pid_t pid;
	int port;
};

/* Run argv with stdout on a pipe and wait up to timeout_s for a line holding a port. */
static inline int child_start(char *const argv[], int timeout_s, struct child *c)
{
	char line[64];
	size_t n = 0;
	int fds[2];

	c->pid = -1;
	c->port = 0;
	if (pipe(fds) < 0)
		return -errno;
	c->pid = fork();
	if (c->pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (c->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, timeout_s * 1000) <= 0)
			break;
		r = read(fds[0], line + n, 1);
		if (r <= 0)
			break;
		if (line[n] == '\n' || n == sizeof(line) - 2) {
			line[n] = 0;
			c->port = atoi(line);
			break;
		}
		n++;
	}
	close(fds[0]);
	if (c->port <= 0 || c->port > 65535) {
		fprintf(stderr, "FAILED to start %s (no port printed)\n", argv[0]);
		kill(c->pid, SIGTERM);
		waitpid(c->pid, NULL, 0);
		c->pid = -1;
		return -EIO;
	}
	return 0;
}

static inline void child_stop(struct child *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	waitpid(c->pid, NULL, 0);
	c->pid = -1;
}

static inline int s3rver_start(struct child *c)
{
	const char *script = getenv("CAIRN_S3RVER_START");
	char *argv[] = { (char *)(script ? script : "tests/s3/start-s3rver.sh"), NULL };

	if (child_start(argv, 600, c)) {
		fprintf(stderr, "s3rver is required for this test: tests/s3/start-s3rver.sh needs "
				"node and npm (Debian nodejs, npm) to install the pinned s3rver\n");
		return -EIO;
	}
	return 0;
}

/* Start the fault proxy in front of 127.0.0.1:upstream. */
static inline int proxy_start(int upstream, const char *rate, const char *modes, const char *stall,
		       struct child *c)
{
	const char *script = getenv("CAIRN_S3_FAULT_PROXY");
	char up[32];
	char *argv[] = { "python3", (char *)(script ? script : "tests/s3/fault_proxy.py"),
			 "--upstream", up, "--rate", (char *)rate, "--modes", (char *)modes,
			 "--stall", (char *)stall, "--seed", "7", NULL };

	snprintf(up, sizeof(up), "127.0.0.1:%d", upstream);
	if (child_start(argv, 30, c)) {
		fprintf(stderr, "the fault proxy needs python3 (Debian python3)\n");
		return -EIO;
	}
	return 0;
}

static inline size_t harness_sink(char *d, size_t s, size_t n, void *arg)
{
	char *buf = arg;
	size_t have = strlen(buf), len = s * n, room = 4095 - have;

	memcpy(buf + have, d, len < room ? len : room);
	buf[have + (len < room ? len : room)] = 0;
	return len;
}

/* GET url into out (4096 bytes, NUL-terminated). */
static inline int http_fetch(const char *url, char out[4096])
{
	CURL *h = curl_easy_init();
	CURLcode cc;

	out[0] = 0;
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, harness_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	cc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return cc == CURLE_OK ? 0 : -EIO;
}

/* Value of "name": N in the proxy's stats JSON, 0 when absent. */
static inline long stat_of(const char *json, const char *name)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", name);
	p = strstr(json, pat);
	return p ? atol(p + strlen(pat)) : 0;
}

#endif
