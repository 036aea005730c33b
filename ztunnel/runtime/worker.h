/* A set of worker threads, each running its own zt_loop until the set is freed. Other threads
 * reach a worker only through zt_loop_post / zt_loop_call on its loop; what runs on a worker
 * is owned by that worker. Worker threads block every signal (the main loop takes them). */
#ifndef ZT_WORKER_H
#define ZT_WORKER_H

#include <stddef.h>

#include "runtime/loop.h"

struct zt_workers;

/* Starts n (>= 1) threads named "<name>-<i>" (name up to 8 bytes), each running a new loop.
 * Returns 0 or -errno (nothing left running). */
int zt_workers_new(struct zt_workers **out, size_t n, const char *name);
size_t zt_workers_count(const struct zt_workers *w);
/* Worker i's loop (borrowed; valid until zt_workers_free). */
struct zt_loop *zt_workers_loop(const struct zt_workers *w, size_t i);
/* Stops every worker after the closures already posted to it, joins the threads and frees
 * their loops. Watchers still started on a worker are forgotten, so free what runs there
 * first. Accepts NULL. */
void zt_workers_free(struct zt_workers *w);

#endif
