/* control.h - the daemon's control socket (a Unix stream socket, mode 0600).
 *
 * Wire format: per connection, the client sends one JSON object on one line
 * ({"cmd":"volume.create",...}\n) and the daemon answers one JSON object on one line:
 * {"ok":true,...} or {"ok":false,"error":"<sentence for the user>","status":N}.
 * Requests are at most CONTROL_MAX_LINE bytes. The daemon handles them one at a time.
 */
#ifndef CAIRN_CONTROL_H
#define CAIRN_CONTROL_H

#include <json-c/json.h>

#define CONTROL_MAX_LINE (1u << 20)

/* Returns a new reply object (the server puts it after sending). */
typedef json_object *(*control_handler)(void *arg, json_object *req);

struct control_server;

/* Bind path (removing a stale socket nobody answers on; -EADDRINUSE if a live daemon
 * answers there) and serve requests on a thread until control_server_stop(). */
int control_server_start(const char *path, control_handler h, void *arg,
			 struct control_server **out);
void control_server_stop(struct control_server *s);

/* 0 if a daemon answers {"cmd":"ping"} on path, else a negative errno. */
int control_ping(const char *path);
/* One request/reply exchange. */
int control_call(const char *path, json_object *req, json_object **resp);

/* Reply helpers for handlers. */
json_object *control_reply_ok(void);
json_object *control_reply_err(int status, const char *msg);

#endif
