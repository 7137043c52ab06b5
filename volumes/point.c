/* point.c - see point.h.
 *
 * In RAM only (nothing here has an on-disk format):
 *   recs[]   the WRITE, ZERO and COPY records of [from_seq, to_seq) after the last
 *            RESTORE,
 *            in seq order: seq, type, volume range, and where the payload is (segment
 *            index into segs[], file offset of the record);
 *   links[]  (chunk, record index) for every chunk a record touches, sorted by chunk
 *            then record: the records of one chunk, oldest first, by binary search;
 *   bigz[]   record indexes of ZERO records whose whole-chunk middle spans more than
 *            BIGZ_CHUNKS chunks: not linked per chunk, checked on every chunk read.
 */
#include "point.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockmap.h"
#include "journal.h"
#include "jstore.h"
#include "util.h"

/* Passes of a point open after the first, when a journal segment it listed was trimmed
 * before it could open it. */
#define POINT_RETRIES 3
#define BIGZ_CHUNKS 1024

struct prec {
	uint64_t seq;
	uint64_t off;
	uint64_t pos;      /* record offset in its segment file */
	uint32_t len;
	uint16_t type;
	uint16_t pad;
	uint32_t seg;      /* index into segs */
};

struct plink {
	uint64_t chunk;
	uint64_t rec;
};

struct pseg {
	uint64_t first;
	int fd;
};

struct point {
	struct chunk_store *cs;  /* the store given, or &kcs */
	struct chunk_store kcs;  /* an own-key volume's (vkey.h): chunks a materialization
				  * stores go under the volume's key */
	struct point_plan plan;
	struct chunk_id base;
	struct blockmap *bm;
	uint64_t nchunks;
	uint32_t chunk_size;
	unsigned cshift;
	pthread_mutex_t lock;
	struct prec *recs;
	size_t nrecs, caprecs;
	struct plink *links;
	size_t nlinks, caplinks;
	uint64_t *bigz;
	size_t nbigz, capbigz;
	struct pseg *segs;
	unsigned nsegs, capsegs;
	struct history_jview hv; /* the journal: live directory, then fetched segments */
	uint8_t *scratch;   /* chunk_size */
	int err;            /* collect error */
};

static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t c;
	void *nv;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 256;
	nv = realloc(*v, c * sz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

static int add_link(struct point *p, uint64_t chunk, uint64_t rec)
{
	if (grow((void **)&p->links, &p->caplinks, p->nlinks, sizeof(*p->links)))
		return -ENOMEM;
	p->links[p->nlinks++] = (struct plink){ chunk, rec };
	return 0;
}

static int seg_index(struct point *p, uint64_t first, uint32_t *idx)
{
	size_t cap = p->capsegs;
	int fd;

	if (p->nsegs && p->segs[p->nsegs - 1].first == first) {
		*idx = p->nsegs - 1;
		return 0;
	}
	fd = journal_segment_open(&p->hv.v, first);
	if (fd < 0)
		return fd;
	if (grow((void **)&p->segs, &cap, p->nsegs, sizeof(*p->segs))) {
		close(fd);
		return -ENOMEM;
	}
	p->capsegs = (unsigned)cap;
	p->segs[p->nsegs] = (struct pseg){ first, fd };
	*idx = p->nsegs++;
	return 0;
}

static int collect_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first,
		      uint64_t rec_pos)
{
	struct point *p = arg;
	struct prec r;
	int ret;

	if (rec->seq >= p->plan.to_seq)
		return 1;
	if (rec->type == JOURNAL_RESTORE) {
		if (rec->payload_len != CHUNK_ID_LEN) {
			p->err = -EBADMSG;
			return 1;
		}
		memcpy(p->base.b, rec->payload, CHUNK_ID_LEN);
		p->nrecs = 0;
		return 0;
	}
	if (rec->type != JOURNAL_WRITE && rec->type != JOURNAL_ZERO && rec->type != JOURNAL_COPY)
		return 0;
	if (rec->type == JOURNAL_COPY) {
		struct journal_copy jc;

		if (journal_copy_parse(rec, &jc) || jc.chunk_size != p->chunk_size)
			return 0; /* replay skips these too */
	}
	if (rec->offset > p->plan.info.size || rec->length > p->plan.info.size - rec->offset)
		return 0; /* replay skips these too */
	memset(&r, 0, sizeof(r));
	r.seq = rec->seq;
	r.off = rec->offset;
	r.len = rec->length;
	r.type = rec->type;
	r.pos = rec_pos;
	ret = seg_index(p, seg_first, &r.seg);
	if (!ret)
		ret = grow((void **)&p->recs, &p->caprecs, p->nrecs, sizeof(*p->recs));
	if (ret) {
		p->err = ret;
		return 1;
	}
	p->recs[p->nrecs++] = r;
	return 0;
}

static int cmp_link(const void *a, const void *b)
{
	const struct plink *x = a, *y = b;

	if (x->chunk != y->chunk)
		return x->chunk < y->chunk ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

static int build_links(struct point *p)
{
	for (size_t i = 0; i < p->nrecs; i++) {
		const struct prec *r = &p->recs[i];
		uint64_t c0, c1, m0, m1;

		if (!r->len)
			continue;
		c0 = r->off >> p->cshift;
		c1 = (r->off + r->len - 1) >> p->cshift;
		if (r->type == JOURNAL_ZERO) {
			/* whole chunks in the middle: [m0, m1) */
			m0 = (r->off + p->chunk_size - 1) >> p->cshift;
			m1 = (r->off + r->len) >> p->cshift;
			if (m1 > m0 && m1 - m0 > BIGZ_CHUNKS) {
				if (grow((void **)&p->bigz, &p->capbigz, p->nbigz, sizeof(*p->bigz)))
					return -ENOMEM;
				p->bigz[p->nbigz++] = i;
				if (c0 < m0 && add_link(p, c0, i))
					return -ENOMEM;
				if (c1 >= m1 && add_link(p, c1, i))
					return -ENOMEM;
				continue;
			}
		}
		for (uint64_t c = c0; c <= c1; c++)
			if (add_link(p, c, i))
				return -ENOMEM;
	}
	if (p->nlinks)
		qsort(p->links, p->nlinks, sizeof(*p->links), cmp_link);
	return 0;
}

/* Gather the records [plan.from_seq, plan.to_seq) into p: the stored segments the
 * state directory lacks are fetched first (a copy of the repository, or a trimmed local
 * journal). -ERANGE when the journal does not reach to_seq. */
static int collect(struct point *p, struct chunk_store *cs)
{
	uint64_t end = 0;
	int ret;

	ret = jstore_prepare(cs, p->plan.info.id, &p->hv.v, p->plan.from_seq, p->plan.to_seq, 0, 0);
	if (ret)
		return ret;
	ret = journal_scan(&p->hv.v, p->plan.from_seq, collect_cb, p, &end);
	if (!ret)
		ret = p->err;
	if (!ret && end < p->plan.to_seq)
		ret = -ERANGE;
	return ret == -ENOENT ? -ERANGE : ret; /* a segment missing */
}

int point_open(struct chunk_store *cs, const char *state_dir, const struct point_plan *plan,
	       struct point **out)
{
	struct point *p;
	int ret;

	if (plan->to_seq < plan->from_seq || !plan->info.size ||
	    plan->info.chunk_size < CHUNK_SIZE_MIN || plan->info.chunk_size > CHUNK_SIZE_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cs = cs;
	if (plan->info.key_ref && cs->ops->keyed &&
	    cs->ops->keyed(cs->ctx, plan->info.key_ref, &p->kcs) == 0)
		p->cs = &p->kcs; /* else (a read-only view): reads need no key store */
	p->plan = *plan;
	p->base = plan->root;
	p->chunk_size = plan->info.chunk_size;
	p->cshift = (unsigned)__builtin_ctz(p->chunk_size);
	p->nchunks = (plan->info.size + p->chunk_size - 1) >> p->cshift;
	pthread_mutex_init(&p->lock, NULL);
	history_view(state_dir, plan->info.id, &p->hv);
	p->scratch = malloc(p->chunk_size);
	if (!p->scratch) {
		ret = -ENOMEM;
		goto out_close;
	}
	if (plan->from_seq < plan->to_seq) {
		ret = collect(p, cs);
		/* A daemon trims its local journal to a budget once segments are stored
		 * (volume.c, journal_trim), and a reader elsewhere may trim the fetch
		 * cache (jstore_cache_trim): one it listed may be gone before it was
		 * opened. Another pass fetches it from the repository; a few, in case a
		 * trim comes between a pass's listing and its open again. */
		for (unsigned pass = 0; ret == -ERANGE && pass < POINT_RETRIES; pass++) {
			for (unsigned i = 0; i < p->nsegs; i++)
				close(p->segs[i].fd);
			p->nsegs = 0;
			p->nrecs = 0;
			p->err = 0;
			p->base = plan->root;
			ret = collect(p, cs);
		}
		if (ret)
			goto out_close;
	}
	ret = build_links(p);
	if (ret)
		goto out_close;
	ret = blockmap_open(p->cs, p->nchunks, &p->base, &p->bm);
	if (ret)
		goto out_close;
	*out = p;
	return 0;

out_close:
	point_close(p);
	return ret;
}

int volume_open_point(struct chunk_store *cs, const char *state_dir, const char *point,
		      struct point **out)
{
	struct point_plan plan;
	int ret = history_resolve(cs, state_dir, point, 0, &plan);

	return ret ? ret : point_open(cs, state_dir, &plan, out);
}

void point_close(struct point *p)
{
	if (!p)
		return;
	blockmap_close(p->bm);
	for (unsigned i = 0; i < p->nsegs; i++)
		close(p->segs[i].fd);
	pthread_mutex_destroy(&p->lock);
	free(p->segs);
	free(p->recs);
	free(p->links);
	free(p->bigz);
	free(p->scratch);
	free(p);
}

const struct point_plan *point_get_plan(const struct point *p)
{
	return &p->plan;
}

uint64_t point_records(const struct point *p)
{
	return p->nrecs;
}

/* First link of chunk c (index), or nlinks. */
static size_t links_of(const struct point *p, uint64_t c)
{
	size_t lo = 0, hi = p->nlinks;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (p->links[mid].chunk < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int bigz_covers(const struct point *p, size_t k, uint64_t c)
{
	const struct prec *r = &p->recs[p->bigz[k]];
	uint64_t cs = c << p->cshift;

	return r->off <= cs && cs + p->chunk_size <= r->off + r->len;
}

/* The id a COPY record r gives chunk c (which it covers). */
static int copy_id(struct point *p, const struct prec *r, uint64_t c, struct chunk_id *id)
{
	uint64_t i = c - (r->off >> p->cshift);

	return util_pread_all(p->segs[r->seg].fd, id->b, CHUNK_ID_LEN,
			      r->pos + JOURNAL_REC_HDR + JOURNAL_COPY_HDR + i * JOURNAL_COPY_ID);
}

/* Apply record r to chunk c held in dst. */
static int apply_rec(struct point *p, const struct prec *r, uint64_t c, uint8_t *dst)
{
	uint64_t cs = c << p->cshift, ce = cs + p->chunk_size;
	uint64_t a = MAX(cs, r->off), b = MIN(ce, r->off + r->len);

	if (a >= b)
		return 0;
	if (r->type == JOURNAL_ZERO) {
		memset(dst + (a - cs), 0, b - a);
		return 0;
	}
	if (r->type == JOURNAL_COPY) {
		struct chunk_id id;
		size_t len = 0;
		int ret = copy_id(p, r, c, &id);

		if (ret)
			return ret;
		if (chunk_id_is_null(&id)) {
			memset(dst, 0, p->chunk_size);
			return 0;
		}
		ret = p->cs->ops->get(p->cs->ctx, &id, dst, p->chunk_size, &len);
		if (ret)
			return ret == -ENOENT || ret == -ENOBUFS ? -EIO : ret;
		return len == p->chunk_size ? 0 : -EBADMSG;
	}
	return util_pread_all(p->segs[r->seg].fd, dst + (a - cs), b - a,
			      r->pos + JOURNAL_REC_HDR + (a - r->off));
}

/* The full content of chunk c into dst. Caller holds lock. */
static int build_chunk(struct point *p, uint64_t c, uint8_t *dst)
{
	struct chunk_id id;
	size_t li = links_of(p, c), k = 0, len = 0;
	int ret;

	ret = blockmap_lookup(p->bm, c, 1, &id);
	if (ret)
		return ret;
	if (chunk_id_is_null(&id)) {
		memset(dst, 0, p->chunk_size);
	} else {
		ret = p->cs->ops->get(p->cs->ctx, &id, dst, p->chunk_size, &len);
		if (ret)
			return ret == -ENOENT || ret == -ENOBUFS ? -EIO : ret;
		if (len != p->chunk_size)
			return -EBADMSG;
	}
	/* merge the chunk's own records with the big zeros, in record order */
	for (;;) {
		uint64_t rl = li < p->nlinks && p->links[li].chunk == c ? p->links[li].rec : UINT64_MAX;
		uint64_t rz;

		while (k < p->nbigz && !bigz_covers(p, k, c))
			k++;
		rz = k < p->nbigz ? p->bigz[k] : UINT64_MAX;
		if (rl == UINT64_MAX && rz == UINT64_MAX)
			break;
		if (rl < rz) {
			ret = apply_rec(p, &p->recs[rl], c, dst);
			li++;
		} else {
			memset(dst, 0, p->chunk_size);
			ret = 0;
			k++;
		}
		if (ret)
			return ret < 0 ? ret : -EIO;
	}
	return 0;
}

int point_read(struct point *p, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;
	int ret = 0;

	if (off % 512 || len % 512)
		return -EINVAL;
	if (off > p->plan.info.size || len > p->plan.info.size - off)
		return -ERANGE;
	pthread_mutex_lock(&p->lock);
	while (len) {
		uint64_t c = off >> p->cshift;
		uint32_t co = (uint32_t)(off & (p->chunk_size - 1));
		size_t n = MIN(len, (size_t)(p->chunk_size - co));

		if (n == p->chunk_size) {
			ret = build_chunk(p, c, out);
		} else {
			ret = build_chunk(p, c, p->scratch);
			if (!ret)
				memcpy(out, p->scratch + co, n);
		}
		if (ret)
			break;
		off += n;
		len -= n;
		out += n;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int point_chunk_is_null(struct point *p, uint64_t c)
{
	struct chunk_id id;
	size_t li;
	int null;

	if (c >= p->nchunks)
		return 0;
	pthread_mutex_lock(&p->lock);
	li = links_of(p, c);
	null = !(li < p->nlinks && p->links[li].chunk == c) &&
	       blockmap_lookup(p->bm, c, 1, &id) == 0 && chunk_id_is_null(&id);
	pthread_mutex_unlock(&p->lock);
	return null;
}

/* 1 with *id when the last record to change chunk c (links from li) is a COPY: the
 * chunk is then exactly the id that record names. */
static int copy_last(struct point *p, uint64_t c, size_t li, struct chunk_id *id)
{
	const struct prec *r;

	while (li + 1 < p->nlinks && p->links[li + 1].chunk == c)
		li++;
	r = &p->recs[p->links[li].rec];
	if (r->type != JOURNAL_COPY)
		return 0;
	for (size_t k = 0; k < p->nbigz; k++)
		if (p->bigz[k] > p->links[li].rec && bigz_covers(p, k, c))
			return 0;
	return copy_id(p, r, c, id) == 0;
}

int point_materialize(struct point *p, struct chunk_id *root_out)
{
	struct blockmap *bm;
	struct chunk_id id;
	int ret;

	if (!p->nrecs) {
		*root_out = p->base;
		return 0;
	}
	ret = blockmap_open(p->cs, p->nchunks, &p->base, &bm);
	if (ret)
		return ret;
	pthread_mutex_lock(&p->lock);
	for (size_t k = 0; k < p->nbigz && !ret; k++) {
		const struct prec *r = &p->recs[p->bigz[k]];
		uint64_t m0 = (r->off + p->chunk_size - 1) >> p->cshift;
		uint64_t m1 = (r->off + r->len) >> p->cshift;

		ret = blockmap_zero_range(bm, m0, m1 - m0);
	}
	for (size_t i = 0; i < p->nlinks && !ret; i++) {
		uint64_t c = p->links[i].chunk;

		if (i && p->links[i - 1].chunk == c)
			continue;
		if (copy_last(p, c, i, &id)) { /* shared by the copy: no data moved */
			ret = blockmap_set(bm, c, &id);
			continue;
		}
		ret = build_chunk(p, c, p->scratch);
		if (!ret)
			ret = p->cs->ops->put(p->cs->ctx, CHUNK_DATA, p->scratch, p->chunk_size, &id);
		if (!ret)
			ret = blockmap_set(bm, c, &id);
	}
	pthread_mutex_unlock(&p->lock);
	if (!ret)
		ret = blockmap_flush(bm, root_out);
	if (!ret)
		ret = p->cs->ops->flush(p->cs->ctx);
	blockmap_close(bm);
	return ret;
}
