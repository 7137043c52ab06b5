/* control.c - see control.h. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define IO_TIMEOUT_MS 30000

struct control_server {
	int lfd;
	int stop_pipe[2];
	pthread_t thread;
	control_handler handler;
	void *arg;
	char path[108];
};

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = make_addr(path, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Read one line (without '\n') into a malloc'd string. */
static int read_line(int fd, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		char *nl;

		rc = poll(&p, 1, IO_TIMEOUT_MS);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			goto out_free;
		}
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out_free;
		}
		if (len + 1 >= cap) {
			char *nb;
			if (cap >= CONTROL_MAX_LINE) {
				rc = -EMSGSIZE;
				goto out_free;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				goto out_free;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out_free;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			goto out_free;
		}
		len += (size_t)n;
		buf[len] = 0;
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = 0;
			*out = buf;
			return 0;
		}
	}
out_free:
	free(buf);
	return rc;
}

static int send_json(int fd, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int rc = util_write_all(fd, s, strlen(s));
	return rc ? rc : util_write_all(fd, "\n", 1);
}

json_object *control_reply_ok(void)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	return r;
}

json_object *control_reply_err(int status, const char *msg)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	json_object_object_add(r, "status", json_object_new_int(status));
	return r;
}

static void serve_one(struct control_server *s, int fd)
{
	char *line = NULL;
	json_object *req, *resp;

	if (read_line(fd, &line))
		return;
	req = json_tokener_parse(line);
	free(line);
	if (!req || !json_object_is_type(req, json_type_object)) {
		resp = control_reply_err(2, "malformed control request (expected one JSON object)");
	} else {
		json_object *cmd;
		if (json_object_object_get_ex(req, "cmd", &cmd) &&
		    !strcmp(json_object_get_string(cmd), "ping"))
			resp = control_reply_ok();
		else
			resp = s->handler(s->arg, req);
	}
	if (send_json(fd, resp))
		log_debug("control", "client went away before the reply");
	json_object_put(resp);
	json_object_put(req);
}

static void *server_thread(void *arg)
{
	struct control_server *s = arg;
	struct pollfd p[2] = {
		{ .fd = s->lfd, .events = POLLIN },
		{ .fd = s->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(s, fd);
		close(fd);
	}
	return NULL;
}

int control_server_start(const char *path, control_handler h, void *arg,
			 struct control_server **out)
{
	struct control_server *s;
	struct sockaddr_un sa;
	char dir[108];
	char *slash;
	int rc, fd;

	rc = make_addr(path, &sa);
	if (rc)
		return rc;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		rc = util_mkdirs(dir, 0700);
		if (rc)
			return rc;
	}
	fd = connect_to(path);
	if (fd >= 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->handler = h;
	s->arg = arg;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(s->lfd, 16) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	rc = -pthread_create(&s->thread, NULL, server_thread, s);
	if (rc)
		goto out_pipe;
	*out = s;
	return 0;

out_pipe:
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
out_unlink:
	unlink(path);
out_close:
	close(s->lfd);
out_free:
	free(s);
	return rc;
}

void control_server_stop(struct control_server *s)
{
	if (!s)
		return;
	if (write(s->stop_pipe[1], "x", 1) < 0)
		log_warn("control", "cannot wake the control thread");
	pthread_join(s->thread, NULL);
	unlink(s->path);
	close(s->lfd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	free(s);
}

int control_call(const char *path, json_object *req, json_object **resp)
{
	char *line = NULL;
	int fd, rc;

	fd = connect_to(path);
	if (fd < 0)
		return fd;
	rc = send_json(fd, req);
	if (rc)
		goto out_close;
	rc = read_line(fd, &line);
	if (rc)
		goto out_close;
	*resp = json_tokener_parse(line);
	free(line);
	if (!*resp)
		rc = -EPROTO;
out_close:
	close(fd);
	return rc;
}

int control_ping(const char *path)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string("ping"));
	rc = control_call(path, req, &resp);
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}
