/* gw_ram_target - the gateway alone over RAM-backed LUNs, for real-initiator tests.
 *
 *   gw_ram_target [--listen 127.0.0.1:0] [--size 64M] [--targets N] [--workers N]
 *
 * Exports iqn.2026-11.org.cairn:ram0 .. ram<N-1>, each with one LUN of --size bytes
 * (zero-filled). Prints "port N" on stdout once listening, runs until SIGINT/SIGTERM,
 * then stops the gateway and frees everything.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log.h"
#include "util.h"

struct ram_disk {
	uint8_t *mem;
	uint64_t size;
	pthread_rwlock_t lock;
};

static int ram_range(struct ram_disk *d, uint64_t off, uint64_t len)
{
	return off > d->size || len > d->size - off ? -ERANGE : 0;
}

static int ram_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct ram_disk *d = ctx;

	if (ram_range(d, off, len))
		return -ERANGE;
	pthread_rwlock_rdlock(&d->lock);
	memcpy(buf, d->mem + off, len);
	pthread_rwlock_unlock(&d->lock);
	return 0;
}

static int ram_write(void *ctx, uint64_t off, const void *buf, size_t len, int fua)
{
	struct ram_disk *d = ctx;

	(void)fua;
	if (ram_range(d, off, len))
		return -ERANGE;
	pthread_rwlock_wrlock(&d->lock);
	memcpy(d->mem + off, buf, len);
	pthread_rwlock_unlock(&d->lock);
	return 0;
}

static int ram_write_zeroes(void *ctx, uint64_t off, uint64_t len, int fua)
{
	struct ram_disk *d = ctx;

	(void)fua;
	if (ram_range(d, off, len))
		return -ERANGE;
	pthread_rwlock_wrlock(&d->lock);
	memset(d->mem + off, 0, len);
	pthread_rwlock_unlock(&d->lock);
	return 0;
}

static int ram_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct lun_ops ram_ops = {
	.read = ram_read,
	.write = ram_write,
	.write_zeroes = ram_write_zeroes,
	.flush = ram_flush,
};

static void usage(void)
{
	fprintf(stderr, "usage: gw_ram_target [--listen ADDR:PORT] [--size SIZE] [--targets N]"
			" [--workers N]\n");
}

int main(int argc, char **argv)
{
	struct gateway_opts o = { .listen = "127.0.0.1:0" };
	struct ram_disk *disks = NULL;
	struct lun *luns = NULL;
	struct gateway *g = NULL;
	uint64_t size = 64ull << 20;
	unsigned ntargets = 1;
	sigset_t set;
	int sig, ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			usage();
			return 2;
		}
		i++;
		if (!strcmp(a, "--listen")) {
			o.listen = v;
		} else if (!strcmp(a, "--size")) {
			if (util_parse_size(v, &size) || !size || size % 512) {
				fprintf(stderr, "gw_ram_target: --size must be a multiple of 512\n");
				return 2;
			}
		} else if (!strcmp(a, "--targets")) {
			ntargets = (unsigned)atoi(v);
		} else if (!strcmp(a, "--workers")) {
			o.workers = (unsigned)atoi(v);
		} else {
			usage();
			return 2;
		}
	}
	if (!ntargets || ntargets > 1024) {
		fprintf(stderr, "gw_ram_target: --targets must be 1..1024\n");
		return 2;
	}
	log_init();
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit the mask */
	signal(SIGPIPE, SIG_IGN);

	disks = calloc(ntargets, sizeof(*disks));
	luns = calloc(ntargets, sizeof(*luns));
	if (!disks || !luns)
		goto out_free;
	for (unsigned i = 0; i < ntargets; i++) {
		disks[i].size = size;
		disks[i].mem = calloc(1, size);
		if (!disks[i].mem) {
			fprintf(stderr, "gw_ram_target: out of memory for %u disks\n", ntargets);
			goto out_free;
		}
		pthread_rwlock_init(&disks[i].lock, NULL);
		luns[i].ops = &ram_ops;
		luns[i].ctx = &disks[i];
		luns[i].size = size;
		luns[i].block_size = 512;
		luns[i].opt_xfer = 64 << 10;
		snprintf(luns[i].name, sizeof(luns[i].name), "ram%u", i);
		snprintf(luns[i].serial, sizeof(luns[i].serial), "ram%08x", i);
		luns[i].naa[0] = 0x60;
		luns[i].naa[1] = 0x01;
		luns[i].naa[2] = 0x40;
		luns[i].naa[3] = 0x5c;
		luns[i].naa[15] = (uint8_t)i;
		luns[i].naa[14] = (uint8_t)(i >> 8);
	}
	ret = gateway_start(&o, &g);
	if (ret) {
		fprintf(stderr, "gw_ram_target: cannot listen on %s: %s\n", o.listen, strerror(-ret));
		ret = 1;
		goto out_free;
	}
	for (unsigned i = 0; i < ntargets; i++) {
		struct lun *lp = &luns[i];
		char iqn[64];

		snprintf(iqn, sizeof(iqn), "iqn.2026-11.org.cairn:ram%u", i);
		if (gateway_add_target(g, iqn, &lp, 1)) {
			fprintf(stderr, "gw_ram_target: cannot add target %s\n", iqn);
			ret = 1;
			goto out_stop;
		}
	}
	printf("port %d\n", gateway_port(g));
	fflush(stdout);
	sigwait(&set, &sig);
	ret = 0;

out_stop:
	gateway_stop(g);
out_free:
	for (unsigned i = 0; disks && i < ntargets; i++) {
		if (disks[i].mem)
			pthread_rwlock_destroy(&disks[i].lock);
		free(disks[i].mem);
	}
	free(disks);
	free(luns);
	return ret;
}
