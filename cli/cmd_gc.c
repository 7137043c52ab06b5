/* cmd_gc.c - `cairn gc [--dry-run] [--json] [--repack-threshold PCT] [--grace DURATION]`:
 * free the space of chunks no root references (stores/gc.c holds the protocol).
 *
 * When a daemon serves the repository, gc runs inside it (its volumes keep writing:
 * gc records what they reuse and checkpoints them before reading the roots); the CLI
 * starts it with gc.start and polls gc.status, drawing progress on a TTY. Otherwise
 * the CLI opens the repository itself under the writer lock.
 *
 * Roots (cli_root_walker): every version of each live volume's head, every history
 * object of it that names a map root ("root" in its JSON: checkpoints, materialized
 * snapshots), and the RESTORE records of its journal (and the chunk ids of its COPY
 * records). Metadata objects are read as
 * JSON and only their "root" field is used, so a new kind of history object with a
 * root is a root too.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blockmap.h"
#include "control.h"
#include "errmsg.h"
#include "gc.h"
#include "gc_cli.h"
#include "history.h"
#include "journal.h"
#include "jstore.h"
#include "log.h"
#include "util.h"
#include "volume.h"
#include "volume_head.h"

static const char usage[] =
	"usage: cairn gc [-r REPO] [--dry-run] [--json] [--repack-threshold PCT] [--grace DURATION]\n"
	"                [--state-dir DIR]\n"
	"Free the space of chunks that no volume, snapshot or retained history references.\n"
	"Packs with no live chunk are deleted; packs whose live share is below the threshold\n"
	"are repacked (live chunks copied to new packs); pack uploads a crash cut short, and\n"
	"the history, stored journal and blobs of deleted volumes, are deleted too. Each is\n"
	"first condemned, and deleted by a gc run at least the grace period later, so\n"
	"readers that opened the repository before (cairn mount) are not broken. Safe while\n"
	"'cairn serve' writes: then it runs inside the daemon.\n"
	"  --dry-run               report what would be freed; change nothing\n"
	"  --json                  machine-readable result\n"
	"  --repack-threshold PCT  repack packs less than PCT % live (default 50; 0: never)\n"
	"  --grace DURATION        delete condemned packs after this long (default 1h; 0:\n"
	"                          delete at once), e.g. 0, 90s, 15m, 1h, 2d, 1w\n"
	"  --state-dir DIR         where the volumes' journals are, without a daemon\n"
	"                          (default: as 'cairn serve')\n";

/* ---- the root walker ---- */

struct rwalk {
	struct chunk_store *cs;
	const struct repo_walk_cbs *cb;
	char root[256];
	const char *vname;         /* the volume's name for messages, or NULL */
};

static int tree_cb(void *arg, const struct chunk_id *id, int is_node)
{
	struct rwalk *w = arg;

	(void)is_node;
	return w->cb->ref(w->cb->arg, w->root, id);
}

static void tree_bad(void *arg, const struct chunk_id *id, int err)
{
	struct rwalk *w = arg;
	char hex[2 * CHUNK_ID_LEN + 1], what[192];

	util_hex(id->b, CHUNK_ID_LEN, hex);
	snprintf(what, sizeof(what), "block-map node %s cannot be read (%s)", hex, strerror(-err));
	w->cb->bad(w->cb->arg, w->root, what);
}

/* The map root a metadata object names: 1 and *root, 0 if it names none; -EBADMSG if
 * it is not JSON. *deleted: a tombstone head. */
static int object_root(const void *data, size_t len, struct chunk_id *root, int *deleted)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *v;
	const char *s;
	int rc = -EBADMSG;

	*deleted = 0;
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, data, (int)len);
	if (!o || !json_object_is_type(o, json_type_object))
		goto out_put;
	if (json_object_object_get_ex(o, "deleted", &v) && json_object_get_boolean(v))
		*deleted = 1;
	rc = 0;
	if (json_object_object_get_ex(o, "root", &v) && json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if (strlen(s) != 2 * CHUNK_ID_LEN || util_unhex(s, root->b, CHUNK_ID_LEN))
			rc = -EBADMSG;
		else
			rc = 1;
	}
out_put:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

/* Walk the root the object key names (a tombstone's only when !skip_deleted). */
static int walk_key(struct rwalk *w, const char *key, int skip_deleted)
{
	struct chunk_id root;
	void *data;
	size_t len;
	int rc, deleted;

	if (w->vname)
		snprintf(w->root, sizeof(w->root), "volume %s: %s", w->vname, key);
	else
		snprintf(w->root, sizeof(w->root), "%s", key);
	rc = w->cs->ops->meta_get(w->cs->ctx, key, &data, &len);
	if (rc == -ENOENT)
		return 0; /* deleted since listed: gc sees it through meta_deleted */
	if (rc == -EBADMSG) {
		w->cb->bad(w->cb->arg, key, "metadata object is damaged");
		return 0;
	}
	if (rc)
		return rc;
	rc = object_root(data, len, &root, &deleted);
	free(data);
	if (rc == -EBADMSG) {
		w->cb->bad(w->cb->arg, key, "metadata object is not a JSON object with a valid root");
		return 0;
	}
	if (rc <= 0 || (deleted && skip_deleted))
		return rc < 0 ? rc : 0;
	return blockmap_walk(w->cs, &root, tree_cb, tree_bad, w);
}

struct strs {
	char **v;
	size_t n, cap;
};

static int strs_add(struct strs *l, const char *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->v, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(s)))
		return -ENOMEM;
	l->n++;
	return 0;
}

static void strs_free(struct strs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int strs_cb(void *arg, const char *key, uint64_t size)
{
	(void)size;
	return strs_add(arg, key);
}

struct jscan {
	struct rwalk *w;
	int rc;
};

static int restore_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first,
		      uint64_t rec_pos)
{
	struct jscan *j = arg;
	struct chunk_id root;

	(void)seg_first;
	(void)rec_pos;
	if (rec->type == JOURNAL_COPY) { /* the chunks a copy by reference named */
		struct journal_copy jc;
		struct chunk_id id;

		if (journal_copy_parse(rec, &jc))
			return 0; /* replay and points skip it too */
		for (uint32_t i = 0; i < jc.count && !j->rc; i++) {
			int rc;

			memcpy(id.b, jc.ids + (size_t)i * JOURNAL_COPY_ID, CHUNK_ID_LEN);
			rc = chunk_id_is_null(&id) ? 0 : tree_cb(j->w, &id, 0);
			if (rc < 0) /* REPO_WALK_SEEN (1) goes on */
				j->rc = rc;
		}
		return j->rc ? 1 : 0;
	}
	if (rec->type != JOURNAL_RESTORE || rec->payload_len != CHUNK_ID_LEN)
		return 0;
	memcpy(root.b, rec->payload, CHUNK_ID_LEN);
	j->rc = blockmap_walk(j->w->cs, &root, tree_cb, tree_bad, j->w);
	return j->rc ? 1 : 0;
}

/* jstore_walk's ref_cb: a chunk a stored segment names for its WRITE data. */
static int seg_ref_cb(void *arg, const struct chunk_id *id)
{
	struct jscan *j = arg;
	int rc = chunk_id_is_null(id) ? 0 : tree_cb(j->w, id, 0);

	if (rc < 0) /* REPO_WALK_SEEN (1) goes on */
		j->rc = rc;
	return j->rc ? 1 : 0;
}

/* The RESTORE records of a volume's journal (and the chunk ids of its COPY records):
 * the segments in the state directory (its live journal and fetched copies), and every
 * segment stored in the repository, walked in place with the chunks it names for its
 * data (a thin segment, jstore.h). The stored ones are walked even without a state
 * directory: they are the repository's own. */
static int walk_journal(struct rwalk *w, const char *state_dir, const char *volid)
{
	struct history_jview hv;
	struct jscan j = { .w = w };
	struct jstore_seg *segs = NULL;
	unsigned n = 0;
	char what[160];
	int rc = 0;

	snprintf(w->root, sizeof(w->root), "journal of volume %s", w->vname ? w->vname : volid);
	if (state_dir) {
		history_view(state_dir, volid, &hv);
		/* drops fetched copies of segments the repository no longer holds (the
		 * empty range fetches nothing) */
		rc = jstore_prepare(w->cs, volid, &hv.v, 0, 0, 0, 0);
		if (!rc) /* every segment, even past a break in the chain */
			rc = journal_scan_all(&hv.v, restore_cb, &j);
		if (rc == -ENOENT)
			rc = 0; /* no journal here: never served from this state directory */
		if (!rc)
			rc = j.rc;
	}
	if (!rc)
		rc = jstore_list(w->cs, volid, &segs, &n);
	for (unsigned i = 0; !rc && i < n; i++) {
		rc = jstore_walk(w->cs, volid, &segs[i], restore_cb, seg_ref_cb, &j);
		if (rc == -ENOENT)
			rc = 0; /* expired since listed */
		if (rc == 1)
			rc = j.rc;
	}
	free(segs);
	if (rc && rc != -ENOMEM) {
		/* a RESTORE root may hide in what cannot be read: keep everything */
		snprintf(what, sizeof(what), "its journal cannot be read (%s)", strerror(-rc));
		w->cb->bad(w->cb->arg, w->root, what);
		rc = 0;
	}
	return rc;
}

/* One volume id: its heads, its history, its journal. */
static int walk_volume(struct rwalk *w, const char *state_dir, const char *volid,
		       const struct strs *keys)
{
	struct volume_head h;
	struct strs hist = { 0 };
	char prefix[96];
	int rc;

	rc = volume_head_get(w->cs, volid, &h);
	if (rc == 0 && h.deleted)
		return 0; /* a deleted volume is no root */
	if (rc && rc != -EBADMSG && rc != -ENOENT)
		return rc;
	w->vname = rc ? NULL : h.info.name;
	/* unreadable newest head: the volume may be live, walk all it has */
	snprintf(prefix, sizeof(prefix), "volumes/%s/", volid);
	for (size_t i = 0; i < keys->n; i++) {
		if (strncmp(keys->v[i], prefix, strlen(prefix)))
			continue;
		rc = walk_key(w, keys->v[i], 1);
		if (rc)
			return rc;
	}
	snprintf(prefix, sizeof(prefix), "history/%s/", volid);
	rc = w->cs->ops->meta_list(w->cs->ctx, prefix, strs_cb, &hist);
	for (size_t i = 0; !rc && i < hist.n; i++)
		rc = walk_key(w, hist.v[i], 0);
	strs_free(&hist);
	if (!rc)
		rc = walk_journal(w, state_dir, volid);
	w->vname = NULL;
	return rc;
}

static int root_walk(void *ctx, struct chunk_store *cs, const struct repo_walk_cbs *cb)
{
	struct cli_root_walker *rw = ctx;
	struct rwalk w = { .cs = cs, .cb = cb };
	struct strs keys = { 0 };
	char last[40] = "";
	int rc;

	rc = cs->ops->meta_list(cs->ctx, "volumes/", strs_cb, &keys);
	for (size_t i = 0; !rc && i < keys.n; i++) {
		const char *id = keys.v[i] + strlen("volumes/");
		const char *slash = strchr(id, '/');
		char volid[40];

		if (!slash || slash - id != 32)
			continue;
		snprintf(volid, sizeof(volid), "%.32s", id);
		if (!strcmp(volid, last))
			continue; /* keys are sorted: one pass per volume */
		snprintf(last, sizeof(last), "%s", volid);
		rc = walk_volume(&w, rw->state_dir, volid, &keys);
	}
	strs_free(&keys);
	return rc;
}

static int root_walk_object(void *ctx, struct chunk_store *cs, const char *key, const void *data,
			    size_t len, const struct repo_walk_cbs *cb)
{
	struct rwalk w = { .cs = cs, .cb = cb };
	struct chunk_id root;
	int rc, deleted;

	(void)ctx;
	if (strncmp(key, "volumes/", 8) && strncmp(key, "history/", 8))
		return 0;
	rc = object_root(data, len, &root, &deleted);
	if (rc <= 0)
		return 0;
	snprintf(w.root, sizeof(w.root), "%s (deleted meanwhile)", key);
	return blockmap_walk(cs, &root, tree_cb, tree_bad, &w);
}

/* ---- dead metadata (repo_tree_walker.dead) ----
 * Every volume whose newest head is a tombstone: its history objects, the journal
 * segments kept in the repository, its blobs, and its head versions but the tombstone
 * (which keeps the name free and the id dead), as one group named by the volume id.
 * A volume id with no readable head is left alone (a create writes its first
 * checkpoint before its head; a damaged head is for 'cairn check'). */

struct sized {
	struct strs keys;
	uint64_t *sizes;
	size_t cap;
};

static int sized_cb(void *arg, const char *key, uint64_t size)
{
	struct sized *l = arg;
	int rc;

	if (l->keys.n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *v = realloc(l->sizes, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		l->sizes = v;
		l->cap = cap;
	}
	rc = strs_add(&l->keys, key);
	if (!rc)
		l->sizes[l->keys.n - 1] = size;
	return rc;
}

static void sized_free(struct sized *l)
{
	strs_free(&l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

static int dead_volume(struct chunk_store *cs, const char *volid, const struct sized *heads,
		       int (*cb)(void *, const char *, const char *, uint64_t), void *arg)
{
	static const char *const kinds[] = { "history", "journal", "volblob" };
	struct volume_head h;
	char prefix[96], newest[128];
	int rc;

	rc = volume_head_get(cs, volid, &h);
	if (rc == -ENOENT || rc == -EBADMSG || (!rc && !h.deleted))
		return 0;
	if (rc)
		return rc;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct sized l = { 0 };

		snprintf(prefix, sizeof(prefix), "%s/%s/", kinds[k], volid);
		rc = cs->ops->meta_list(cs->ctx, prefix, sized_cb, &l);
		for (size_t i = 0; !rc && i < l.keys.n; i++)
			rc = cb(arg, volid, l.keys.v[i], l.sizes[i]);
		sized_free(&l);
		if (rc)
			return rc;
	}
	snprintf(prefix, sizeof(prefix), "volumes/%s/", volid);
	snprintf(newest, sizeof(newest), "volumes/%s/head.%016llx", volid,
		 (unsigned long long)h.version);
	for (size_t i = 0; !rc && i < heads->keys.n; i++)
		if (!strncmp(heads->keys.v[i], prefix, strlen(prefix)) &&
		    strcmp(heads->keys.v[i], newest))
			rc = cb(arg, volid, heads->keys.v[i], heads->sizes[i]);
	return rc;
}

static int root_dead(void *ctx, struct chunk_store *cs,
		     int (*cb)(void *arg, const char *group, const char *key, uint64_t size),
		     void *arg)
{
	struct sized heads = { 0 };
	char last[40] = "";
	int rc;

	(void)ctx;
	rc = cs->ops->meta_list(cs->ctx, "volumes/", sized_cb, &heads);
	for (size_t i = 0; !rc && i < heads.keys.n; i++) {
		const char *id = heads.keys.v[i] + strlen("volumes/");
		char volid[40];

		if (!strchr(id, '/') || strchr(id, '/') - id != 32)
			continue;
		snprintf(volid, sizeof(volid), "%.32s", id);
		if (!strcmp(volid, last))
			continue; /* keys are sorted: one pass per volume */
		snprintf(last, sizeof(last), "%s", volid);
		rc = dead_volume(cs, volid, &heads, cb, arg);
	}
	sized_free(&heads);
	return rc;
}

static const char *const root_prefixes[] = { "volumes/", "history/", NULL };

void cli_root_walker_init(struct cli_root_walker *rw, const char *state_dir)
{
	rw->w.walk = root_walk;
	rw->w.walk_object = root_walk_object;
	rw->w.object_prefixes = root_prefixes;
	rw->w.dead = root_dead;
	rw->w.ctx = rw;
	rw->state_dir = state_dir;
}

/* ---- results ---- */

static json_object *result_json(const struct gc_result *r, const struct gc_opts *o)
{
	json_object *j = json_object_new_object();

#define U(k, v) json_object_object_add(j, k, json_object_new_int64((int64_t)(v)))
	json_object_object_add(j, "dry_run", json_object_new_boolean(o->dry_run));
	U("repack_threshold_pct", o->repack_pct);
	U("grace_ns", o->grace_ns);
	U("packs", r->packs);
	U("pack_bytes", r->pack_bytes);
	U("refs", r->refs);
	U("missing_chunks", r->missing);
	U("live_chunks", r->live_chunks);
	U("dead_chunks", r->dead_chunks);
	U("live_bytes", r->live_bytes);
	U("dead_bytes", r->dead_bytes);
	U("reused_chunks", r->reused_chunks);
	U("packs_deleted", r->packs_deleted);
	U("bytes_deleted", r->bytes_deleted);
	U("packs_repacked", r->packs_repacked);
	U("packs_written", r->packs_written);
	U("bytes_written", r->bytes_written);
	U("chunks_moved", r->chunks_moved);
	U("packs_condemned", r->packs_condemned);
	U("bytes_condemned", r->bytes_condemned);
	U("packs_waiting", r->packs_waiting);
	U("bytes_waiting", r->bytes_waiting);
	U("packs_revived", r->packs_revived);
	U("orphans_deleted", r->orphans_deleted);
	U("bytes_freed", (r->bytes_deleted > r->bytes_written ? r->bytes_deleted - r->bytes_written : 0) +
			 r->meta_bytes_deleted);
	U("next_ns", r->next_ns);
	U("incomplete_uploads", r->incomplete);
	U("incomplete_deleted", r->incomplete_deleted);
	U("dead_volumes", r->dead_volumes);
	U("meta_deleted", r->meta_deleted);
	U("meta_bytes_deleted", r->meta_bytes_deleted);
	U("meta_waiting", r->meta_waiting);
	U("meta_bytes_waiting", r->meta_bytes_waiting);
#undef U
	json_object_object_add(j, "damaged", json_object_new_boolean(r->damaged));
	return j;
}

static uint64_t jget(json_object *j, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(j, k, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static void print_result(json_object *j, int as_json)
{
	char a[32], b[32], c[32], t[48];
	int dry = 0;
	json_object *v;

	if (as_json) {
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		return;
	}
	if (json_object_object_get_ex(j, "dry_run", &v))
		dry = json_object_get_boolean(v);
	printf("examined      %llu packs (%s), %llu chunk references from the roots\n",
	       (unsigned long long)jget(j, "packs"), util_fmt_size(jget(j, "pack_bytes"), a, sizeof(a)),
	       (unsigned long long)jget(j, "refs"));
	printf("live          %llu chunks (%s)\n", (unsigned long long)jget(j, "live_chunks"),
	       util_fmt_size(jget(j, "live_bytes"), a, sizeof(a)));
	printf("dead          %llu chunks (%s)\n", (unsigned long long)jget(j, "dead_chunks"),
	       util_fmt_size(jget(j, "dead_bytes"), a, sizeof(a)));
	printf("%-13s %llu packs (%s)\n", dry ? "would delete" : "deleted",
	       (unsigned long long)jget(j, "packs_deleted"),
	       util_fmt_size(jget(j, "bytes_deleted"), a, sizeof(a)));
	printf("%-13s %llu packs: %llu live chunks %s %llu new packs (%s)\n",
	       dry ? "would repack" : "repacked", (unsigned long long)jget(j, "packs_repacked"),
	       (unsigned long long)jget(j, "chunks_moved"), dry ? "moved" : "moved into",
	       (unsigned long long)jget(j, "packs_written"),
	       util_fmt_size(jget(j, "bytes_written"), b, sizeof(b)));
	if (jget(j, "packs_condemned") || jget(j, "packs_waiting")) {
		printf("%-13s %llu packs (%s)%s; %llu condemned earlier still in their grace period (%s)\n",
		       dry ? "would condemn" : "condemned", (unsigned long long)jget(j, "packs_condemned"),
		       util_fmt_size(jget(j, "bytes_condemned"), a, sizeof(a)),
		       dry ? "" : " now", (unsigned long long)jget(j, "packs_waiting"),
		       util_fmt_size(jget(j, "bytes_waiting"), c, sizeof(c)));
		if (jget(j, "next_ns"))
			printf("              a gc run from %s on deletes them\n",
			       util_fmt_time(jget(j, "next_ns"), t, sizeof(t)));
	}
	if (jget(j, "incomplete_uploads"))
		printf("incomplete    %llu pack uploads cut short by a crash; %llu %s\n",
		       (unsigned long long)jget(j, "incomplete_uploads"),
		       (unsigned long long)jget(j, "incomplete_deleted"),
		       dry ? "would be deleted" : "deleted");
	if (jget(j, "dead_volumes")) {
		printf("deleted vols  %llu: %s %llu metadata objects (%s) of their history, journal and blobs",
		       (unsigned long long)jget(j, "dead_volumes"), dry ? "would delete" : "deleted",
		       (unsigned long long)jget(j, "meta_deleted"),
		       util_fmt_size(jget(j, "meta_bytes_deleted"), a, sizeof(a)));
		if (jget(j, "meta_waiting"))
			printf("; %llu (%s) in their grace period",
			       (unsigned long long)jget(j, "meta_waiting"),
			       util_fmt_size(jget(j, "meta_bytes_waiting"), c, sizeof(c)));
		putchar('\n');
		if (jget(j, "meta_waiting") && !jget(j, "packs_condemned") && !jget(j, "packs_waiting") &&
		    jget(j, "next_ns"))
			printf("              a gc run from %s on deletes them\n",
			       util_fmt_time(jget(j, "next_ns"), t, sizeof(t)));
	}
	if (jget(j, "reused_chunks"))
		printf("reused        %llu chunks no root referenced were reused by writers meanwhile: kept\n",
		       (unsigned long long)jget(j, "reused_chunks"));
	if (jget(j, "packs_revived"))
		printf("revived       %llu condemned packs referenced again\n",
		       (unsigned long long)jget(j, "packs_revived"));
	if (jget(j, "missing_chunks"))
		printf("warning       %llu referenced chunks are missing: run 'cairn check'\n",
		       (unsigned long long)jget(j, "missing_chunks"));
	printf("%-13s %s\n", dry ? "would free" : "freed",
	       util_fmt_size(jget(j, "bytes_freed"), a, sizeof(a)));
}

/* ---- progress ---- */

struct prog {
	pthread_mutex_t lock;
	char phase[16];
	uint64_t done, total;
	int tty;
};

static void draw(const char *phase, uint64_t done, uint64_t total)
{
	if (!strcmp(phase, "mark"))
		fprintf(stderr, "\r\033[Kgc: marking: %llu chunk references", (unsigned long long)done);
	else if (!strcmp(phase, "sweep"))
		fprintf(stderr, "\r\033[Kgc: sweeping packs: %llu/%llu", (unsigned long long)done,
			(unsigned long long)total);
	else if (*phase)
		fprintf(stderr, "\r\033[Kgc: %s", strcmp(phase, "settle") ? phase :
			"checkpointing the served volumes");
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	pthread_mutex_lock(&p->lock);
	snprintf(p->phase, sizeof(p->phase), "%s", phase);
	p->done = done;
	p->total = total;
	if (p->tty)
		draw(phase, done, total);
	pthread_mutex_unlock(&p->lock);
}

/* ---- in the daemon ---- */

static struct {
	pthread_mutex_t lock;
	int running, finished, joinable, stop;
	pthread_t th;
	struct daemon *d;
	struct gc *g;
	struct gc_opts o;
	struct cli_root_walker rw;
	struct gc_result res;
	struct prog prog;
	int status;
	char error[512];
	json_object *result;
} dgc = { .lock = PTHREAD_MUTEX_INITIALIZER, .prog = { .lock = PTHREAD_MUTEX_INITIALIZER } };

static int daemon_settle(void *arg)
{
	struct daemon *d = arg;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	for (struct served *s = d->served; s && !rc; s = s->next)
		rc = volume_checkpoint(s->vol);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static void daemon_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	(void)arg;
	on_progress(&dgc.prog, phase, done, total);
}

static int daemon_cancelled(void *arg)
{
	int stop;

	(void)arg;
	pthread_mutex_lock(&dgc.lock);
	stop = dgc.stop;
	pthread_mutex_unlock(&dgc.lock);
	return stop;
}

static void *daemon_gc_main(void *arg)
{
	json_object *result;
	int rc;

	(void)arg;
	rc = gc_run(dgc.g, &dgc.res);
	gc_end(dgc.g);
	result = result_json(&dgc.res, &dgc.o);
	pthread_mutex_lock(&dgc.lock);
	dgc.g = NULL;
	dgc.status = 0;
	dgc.error[0] = 0;
	if (rc) {
		dgc.status = cli_msg_format(dgc.error, sizeof(dgc.error), MSG_GC_FAILED,
					    dgc.d->repo_url, strerror(-rc));
	} else if (dgc.res.damaged) {
		dgc.status = cli_msg_format(dgc.error, sizeof(dgc.error), MSG_GC_DAMAGED,
					    dgc.d->repo_url);
	}
	if (dgc.result)
		json_object_put(dgc.result);
	dgc.result = result;
	dgc.running = 0;
	dgc.finished = 1;
	pthread_mutex_unlock(&dgc.lock);
	return NULL;
}

json_object *daemon_gc_start(struct daemon *d, json_object *req)
{
	json_object *v;
	char msg[512];
	int rc;

	pthread_mutex_lock(&dgc.lock);
	if (dgc.running) {
		pthread_mutex_unlock(&dgc.lock);
		cli_msg_format(msg, sizeof(msg), MSG_GC_RUNNING);
		return control_reply_err(1, msg);
	}
	if (dgc.joinable) {
		pthread_join(dgc.th, NULL);
		dgc.joinable = 0;
	}
	memset(&dgc.o, 0, sizeof(dgc.o));
	dgc.d = d;
	dgc.stop = 0;
	cli_root_walker_init(&dgc.rw, d->state_dir);
	dgc.o.walker = &dgc.rw.w;
	dgc.o.repack_pct = json_object_object_get_ex(req, "repack_pct", &v) ?
			   (unsigned)json_object_get_int(v) : GC_REPACK_PCT_DEFAULT;
	dgc.o.grace_ns = json_object_object_get_ex(req, "grace_ns", &v) ?
			 (uint64_t)json_object_get_int64(v) : GC_GRACE_DEFAULT_NS;
	dgc.o.dry_run = json_object_object_get_ex(req, "dry_run", &v) && json_object_get_boolean(v);
	dgc.o.settle = daemon_settle;
	dgc.o.progress = daemon_progress;
	dgc.o.cancelled = daemon_cancelled;
	dgc.o.arg = d;
	snprintf(dgc.prog.phase, sizeof(dgc.prog.phase), "start");
	dgc.prog.done = dgc.prog.total = 0;
	/* recording starts here, on the control thread: no other command is half done */
	rc = gc_begin(d->repo, &dgc.o, &dgc.g);
	if (!rc) {
		rc = -pthread_create(&dgc.th, NULL, daemon_gc_main, NULL);
		if (rc) {
			gc_end(dgc.g);
			dgc.g = NULL;
		}
	}
	if (rc) {
		pthread_mutex_unlock(&dgc.lock);
		cli_msg_format(msg, sizeof(msg), MSG_GC_FAILED, d->repo_url, strerror(-rc));
		return control_reply_err(1, msg);
	}
	dgc.running = 1;
	dgc.joinable = 1;
	dgc.finished = 0;
	pthread_mutex_unlock(&dgc.lock);
	return control_reply_ok();
}

json_object *daemon_gc_status(struct daemon *d, json_object *req)
{
	json_object *r = control_reply_ok();

	(void)d;
	(void)req;
	pthread_mutex_lock(&dgc.lock);
	json_object_object_add(r, "running", json_object_new_boolean(dgc.running));
	pthread_mutex_lock(&dgc.prog.lock);
	json_object_object_add(r, "phase", json_object_new_string(dgc.prog.phase));
	json_object_object_add(r, "done", json_object_new_int64((int64_t)dgc.prog.done));
	json_object_object_add(r, "total", json_object_new_int64((int64_t)dgc.prog.total));
	pthread_mutex_unlock(&dgc.prog.lock);
	if (dgc.finished) {
		json_object_object_add(r, "finished", json_object_new_boolean(1));
		json_object_object_add(r, "status", json_object_new_int(dgc.status));
		if (dgc.error[0])
			json_object_object_add(r, "error", json_object_new_string(dgc.error));
		if (dgc.result)
			json_object_object_add(r, "result", json_object_get(dgc.result));
	}
	pthread_mutex_unlock(&dgc.lock);
	return r;
}

void daemon_gc_wait(void)
{
	pthread_mutex_lock(&dgc.lock);
	dgc.stop = 1;
	if (dgc.joinable) {
		pthread_mutex_unlock(&dgc.lock);
		pthread_join(dgc.th, NULL);
		pthread_mutex_lock(&dgc.lock);
		dgc.joinable = 0;
	}
	if (dgc.result)
		json_object_put(dgc.result);
	dgc.result = NULL;
	pthread_mutex_unlock(&dgc.lock);
}

/* ---- the command ---- */

static int via_daemon(struct cli_session *s, const struct gc_opts *o, int as_json)
{
	json_object *req = json_object_new_object(), *resp = NULL, *v;
	int rc, tty = isatty(2), status = 0;

	json_object_object_add(req, "cmd", json_object_new_string("gc.start"));
	json_object_object_add(req, "dry_run", json_object_new_boolean(o->dry_run));
	json_object_object_add(req, "repack_pct", json_object_new_int((int)o->repack_pct));
	json_object_object_add(req, "grace_ns", json_object_new_int64((int64_t)o->grace_ns));
	rc = cli_daemon_call(s, req, &resp);
	json_object_put(req);
	if (rc)
		return rc;
	json_object_put(resp);
	for (;;) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		req = json_object_new_object();
		json_object_object_add(req, "cmd", json_object_new_string("gc.status"));
		rc = cli_daemon_call(s, req, &resp);
		json_object_put(req);
		if (rc)
			return rc;
		if (json_object_object_get_ex(resp, "finished", &v) && json_object_get_boolean(v) &&
		    !(json_object_object_get_ex(resp, "running", &v) && json_object_get_boolean(v)))
			break;
		if (tty && json_object_object_get_ex(resp, "phase", &v))
			draw(json_object_get_string(v), jget(resp, "done"), jget(resp, "total"));
		json_object_put(resp);
		nanosleep(&ts, NULL);
	}
	if (tty)
		fputs("\r\033[K", stderr);
	if (json_object_object_get_ex(resp, "result", &v) &&
	    (!json_object_object_get_ex(resp, "error", NULL) || jget(v, "damaged") || as_json))
		print_result(v, as_json);
	if (json_object_object_get_ex(resp, "error", &v)) {
		fprintf(stderr, "cairn: %s\n", json_object_get_string(v));
		status = (int)jget(resp, "status");
		if (!status)
			status = 1;
	}
	json_object_put(resp);
	return status;
}

static int direct(struct cli_globals *g, struct cli_session *s, struct gc_opts *o,
		  const char *state_opt, int as_json)
{
	struct cli_root_walker rw;
	struct gc_result res;
	struct prog prog = { .lock = PTHREAD_MUTEX_INITIALIZER, .tty = isatty(2) };
	char sdir[4096];
	const char *state = state_opt;
	json_object *j;
	int rc;

	if (!state)
		state = cli_default_state_dir(repo_id_hex(s->repo), sdir, sizeof(sdir));
	cli_root_walker_init(&rw, state);
	o->walker = &rw.w;
	o->progress = on_progress;
	o->arg = &prog;
	rc = gc_repo(s->repo, o, &res);
	if (prog.tty)
		fputs("\r\033[K", stderr);
	if (rc)
		return cli_fail(MSG_GC_FAILED, g->repo, strerror(-rc));
	/* the local state of volumes deleted by a command that stopped before removing it */
	if (!o->dry_run && (rc = volume_state_sweep(&s->cs, state, NULL)) != 0)
		log_warn("gc", "deleted volumes' local state in %s not swept: %s", state,
			 strerror(-rc));
	j = result_json(&res, o);
	print_result(j, as_json);
	json_object_put(j);
	if (res.damaged)
		return cli_fail(MSG_GC_DAMAGED, g->repo);
	return 0;
}

int cmd_gc(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "repack-threshold", required_argument, NULL, 't' },
		{ "grace", required_argument, NULL, 'g' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct gc_opts o = { .repack_pct = GC_REPACK_PCT_DEFAULT, .grace_ns = GC_GRACE_DEFAULT_NS };
	struct cli_session s;
	const char *state_opt = NULL;
	int c, rc, as_json = 0;
	char *end;
	long pct;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.dry_run = 1; break;
		case 'j': as_json = 1; break;
		case 't':
			pct = strtol(optarg, &end, 10);
			if (end == optarg || (*end && strcmp(end, "%")) || pct < 0 || pct > 100)
				return cli_fail(MSG_GC_PERCENT, optarg);
			o.repack_pct = (unsigned)pct;
			break;
		case 'g':
			if (history_parse_duration(optarg, &o.grace_ns))
				return cli_fail(MSG_GC_DURATION, optarg);
			break;
		case 's': state_opt = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "gc takes no positional arguments");
	g->state_dir = state_opt; /* cli_open keeps the index table there too */
	rc = cli_open(g, CLI_OPEN_WRITE, &s);
	if (rc)
		return rc;
	if (s.via_daemon)
		rc = via_daemon(&s, &o, as_json);
	else
		rc = direct(g, &s, &o, state_opt, as_json);
	cli_close(&s);
	return rc;
}
