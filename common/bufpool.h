/* bufpool.h - fixed pools of equal-sized buffers, allocated once at start.
 *
 * Contract: bufpool_get() never mallocs; it blocks (or fails with NULL for
 * bufpool_tryget) while the pool is empty. Buffers are 64-byte aligned.
 * Thread-safe. The data path takes every buffer from a pool (no malloc per IO).
 */
#ifndef CAIRN_BUFPOOL_H
#define CAIRN_BUFPOOL_H

#include <stddef.h>

struct bufpool;

/* Allocate count buffers of size bytes. Returns NULL on ENOMEM. */
struct bufpool *bufpool_create(size_t size, unsigned count);
void bufpool_destroy(struct bufpool *p);
size_t bufpool_bufsize(const struct bufpool *p);
/* Wait for a free buffer. */
void *bufpool_get(struct bufpool *p);
/* A free buffer, or NULL at once if none. */
void *bufpool_tryget(struct bufpool *p);
void bufpool_put(struct bufpool *p, void *buf);
/* Buffers in use now. */
unsigned bufpool_in_use(struct bufpool *p);

#endif
