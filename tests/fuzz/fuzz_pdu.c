/* fuzz_pdu - libFuzzer target: the byte stream an initiator sends, through the daemon's
 * own connection code (gateway/iscsi_conn.c: BHS/AHS/digest receive state machine,
 * login, text, SCSI commands with immediate data, R2T/Data-Out, NOP, TMF, logout) on a
 * socketpair, with commands executed against RAM LUNs by the SCSI layer.
 *
 * Input layout:
 *   byte 0        configuration (FZ_* of fuzz_env.h: CHAP, mutual, ACL, read-only, ...)
 *   then records  [len: u16 big-endian][len bytes]; each record is written to the
 *                 socket, then the harness runs one network-thread round: read and
 *                 process, wait for every task sent to the worker, hand completions
 *                 back, reap, and read everything the target wrote.
 * A record holding "CHAP_R=0x" + 32 or 64 '?' gets the right CHAP response to the last
 * challenge the target sent (fuzz_chap_fill), so authenticated sessions are reachable.
 * FUZZ_DUMP=FILE appends every byte the target sends to FILE (to check what a seed
 * reaches); FUZZ_LOG=1 turns the daemon's log on.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "fuzz_env.h"
#include "iscsi_conn.h"
#include "log.h"

#define OUT_KEEP 16384 /* tail of the target's output kept for CHAP challenges */

static uint8_t out_tail[OUT_KEEP];
static size_t out_len;
static int dump_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* quiet unless FUZZ_LOG is set: a log line per PDU would dominate the run */
	log_set_level(getenv("FUZZ_LOG") ? LOG_DEBUG : (enum log_level)(LOG_ERROR + 1));
	signal(SIGPIPE, SIG_IGN);
	if (getenv("FUZZ_DUMP"))
		dump_fd = open(getenv("FUZZ_DUMP"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	fuzz_env_init(1);
	return 0;
}

/* Read what the target wrote; keep its tail. */
static void drain_peer(int fd)
{
	uint8_t buf[65536];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		size_t n = (size_t)r;

		if (dump_fd >= 0 && write(dump_fd, buf, n) < 0)
			abort();
		if (n >= OUT_KEEP) {
			memcpy(out_tail, buf + n - OUT_KEEP, OUT_KEEP);
			out_len = OUT_KEEP;
		} else {
			if (out_len + n > OUT_KEEP) {
				size_t drop = out_len + n - OUT_KEEP;

				memmove(out_tail, out_tail + drop, out_len - drop);
				out_len -= drop;
			}
			memcpy(out_tail + out_len, buf, n);
			out_len += n;
		}
	}
}

/* Hand every task the worker finished back to its connection; wait until c has none
 * in the worker. */
static void settle_tasks(struct iscsi_server *srv, struct iscsi_conn *c)
{
	for (;;) {
		struct iscsi_task *t = iscsi_server_take_done(srv), *next;
		struct pollfd pfd = { .fd = srv->evfd, .events = POLLIN };
		uint64_t cnt;

		for (; t; t = next) {
			next = t->done_next;
			iscsi_conn_task_done(t);
		}
		if (!c->busy)
			return;
		if (poll(&pfd, 1, 1000) > 0 && read(srv->evfd, &cnt, sizeof(cnt)) < 0) {
			/* drained already */
		}
	}
}

/* One round of the network thread after new bytes arrived. Returns c, or NULL once the
 * connection is closed and freed. */
static struct iscsi_conn *round_trip(struct iscsi_server *srv, struct iscsi_conn *c, int peer)
{
	for (int i = 0; i < 4096; i++) {
		struct iscsi_conn *p;
		int more;

		if (!c->dead && !c->halt_rx && iscsi_conn_on_read(c) < 0)
			iscsi_conn_close(c);
		settle_tasks(srv, c);
		/* with no task in the worker, a connection that is closed now or by the reap
		 * (close_after, closing) is freed by the reap */
		iscsi_conn_reap(srv);
		drain_peer(peer);
		for (p = srv->conns; p && p != c; p = p->next)
			;
		if (!p)
			return NULL;
		if (c->want_out && iscsi_conn_on_write(c) < 0) {
			iscsi_conn_close(c);
			continue;
		}
		more = c->txq_head || c->tx_count || c->busy;
		if (!more) {
			unsigned used = 0;

			for (unsigned k = 0; k < ISCSI_NTASKS; k++)
				used += c->tasks[k].state != TASK_FREE;
			if (used + c->nfree != ISCSI_NTASKS) {
				fprintf(stderr, "fuzz_pdu: %u tasks in use but %u free of %u\n",
					used, c->nfree, ISCSI_NTASKS);
				abort();
			}
			return c;
		}
	}
	fprintf(stderr, "fuzz_pdu: the connection does not settle\n");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_server *srv = fuzz_srv();
	struct fuzz_in in = { data, size };
	struct sockaddr_in *sin;
	struct iscsi_conn *c;
	static uint8_t rec[65536];
	int sv[2];

	if (!size)
		return 0;
	fuzz_env_reset(fz_u8(&in));
	out_len = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	if (iscsi_conn_create(srv, sv[0], &c))
		abort();
	/* as if from 127.0.0.1:40000, so the ACL's network rules apply */
	memset(&c->peer_ss, 0, sizeof(c->peer_ss));
	sin = (struct sockaddr_in *)&c->peer_ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(c->peer, sizeof(c->peer), "127.0.0.1:40000");
	snprintf(c->local, sizeof(c->local), "127.0.0.1:3260");

	while (c && in.n >= 2) {
		size_t len = fz_u16(&in), got, off = 0;
		const uint8_t *p = fz_take(&in, len, &got);

		memcpy(rec, p, got);
		fuzz_chap_fill(rec, got, (const char *)out_tail, out_len);
		while (c && off < got) {
			ssize_t w = write(sv[1], rec + off, got - off);

			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				break;
			c = round_trip(srv, c, sv[1]);
			if (c && c->halt_rx)
				break; /* it reads nothing more: the rest stays unread */
		}
	}
	if (c) {
		iscsi_conn_close(c);
		settle_tasks(srv, c);
		iscsi_conn_reap(srv);
	}
	close(sv[1]);
	fuzz_env_release();
	return 0;
}
