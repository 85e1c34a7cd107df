/* fastiou's thread pool: work claiming in which the caller works too.
 *
 * Why not OpenMP (see docs/ARCHITECTURE.md, "The parallel runtime"):
 * - a parallel region ends at a barrier that waits for every thread of the team, also for one
 *   the OS has not run yet: beside a job that holds every core (a torch training loop) each call
 *   then waits a scheduler time slice (~4 ms) for a thread that finds nothing left to do;
 * - libgomp is not fork-safe: a child forked after a parallel region hangs in the next one.
 *
 * Here a job is split into chunks claimed from one atomic counter. The caller claims chunks
 * too and returns as soon as every claimed chunk is done: a worker that wakes late finds
 * nothing and never makes the caller wait; with no worker at all the caller does all the work
 * (its single-thread time). A child forked at any point starts with no workers and makes new
 * ones on its first parallel call. One job runs at a time; a call made while another thread's
 * job runs does its own work alone (correct, and no waiting on the other job).
 *
 * The claim word holds the job generation (high 32 bits) beside the next chunk (low 32 bits),
 * so a worker holding a stale snapshot of a finished job can never claim a chunk of the next.
 *
 * Busy cores. A worker can still be preempted *after* claiming a chunk; the caller then waits
 * for it until the OS runs it again (a time slice, ~4 ms, over calls of ~1 ms). The caller
 * measures each job: when it waited for late chunks longer than half the time it worked itself
 * (plus 100 us), the cores are taken by someone else, and the next jobs run on the caller alone
 * (its single-thread time, no waiting) for a while: 20 ms, doubling while the load lasts, up to
 * one second. Then one job tries the workers again; a job that runs clean forgets the load.
 * Sustained load thus costs one late job per second at most, and an idle machine none.
 */
#ifndef FASTIOU_POOL_H
#define FASTIOU_POOL_H

#include <stdint.h>

typedef void (*fi_task_fn)(void *ctx, int64_t begin, int64_t end, int slot);

#if defined(_WIN32) || defined(FASTIOU_SERIAL)
/* No pthreads: the serial fallback (same results). */
static int fi_parallel_for(fi_task_fn fn, void *ctx, int64_t n, int64_t grain, int threads) {
    (void)grain; (void)threads;
    if (n > 0) fn(ctx, 0, n, 0);
    return 1;
}
static int fi_pool_workers(void) { return 0; }
static int fi_pool_alone(void) { return 0; }
static void fi_pool_hold_alone(int64_t ns) { (void)ns; }
static void fi_pool_init(void) {}
#define FASTIOU_POOL_THREADED 0
#else
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#define FASTIOU_POOL_THREADED 1

#define FI_MAX_WORKERS 255

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int workers;          /* worker threads started in this process */
    int busy;             /* a job runs */
    uint32_t gen;         /* generation of the current (or last) job */
    fi_task_fn fn;        /* the job, read by workers under mu */
    void *ctx;
    int64_t n, grain, nchunks;
    int slots, joined;    /* slot 0 is the caller's; workers take 1.. while joined < slots */
    int64_t alone_until;  /* CLOCK_MONOTONIC ns: jobs before this run on the caller alone */
    int64_t backoff;      /* the current alone period (ns); 0: no load seen lately */
    _Atomic uint64_t claim;
    _Atomic int64_t done;
} fi_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

#define FI_BACKOFF_MIN 20000000LL     /* 20 ms */
#define FI_BACKOFF_MAX 1000000000LL   /* 1 s */
#define FI_LATE_SLACK 100000LL        /* 100 us */

static int64_t fi_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t fi_claim(uint32_t gen, int64_t nchunks) {
    uint64_t v = atomic_load_explicit(&fi_pool.claim, memory_order_relaxed);
    for (;;) {
        int64_t c = (int64_t)(v & 0xffffffffu);
        if ((uint32_t)(v >> 32) != gen || c >= nchunks) return -1;
        if (atomic_compare_exchange_weak_explicit(&fi_pool.claim, &v, v + 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return c;
    }
}

/* Run chunk c; the one who finishes the last chunk wakes the caller. */
static void fi_run(fi_task_fn fn, void *ctx, int64_t n, int64_t grain, int64_t nchunks,
                   int64_t c, int slot) {
    int64_t begin = c * grain, end = begin + grain < n ? begin + grain : n;
    fn(ctx, begin, end, slot);
    if (atomic_fetch_add_explicit(&fi_pool.done, 1, memory_order_acq_rel) + 1 == nchunks) {
        pthread_mutex_lock(&fi_pool.mu);
        pthread_cond_signal(&fi_pool.done_cv);
        pthread_mutex_unlock(&fi_pool.mu);
    }
}

static void *fi_worker(void *arg) {
    (void)arg;
    uint32_t seen = 0;
    pthread_mutex_lock(&fi_pool.mu);
    seen = fi_pool.gen;  /* jobs before this thread existed are not its business */
    for (;;) {
        if (!fi_pool.busy || fi_pool.gen == seen || fi_pool.joined >= fi_pool.slots) {
            if (fi_pool.busy) seen = fi_pool.gen;  /* a full job: skip it */
            pthread_cond_wait(&fi_pool.work_cv, &fi_pool.mu);
            continue;
        }
        seen = fi_pool.gen;
        int slot = fi_pool.joined++;
        fi_task_fn fn = fi_pool.fn;
        void *ctx = fi_pool.ctx;
        int64_t n = fi_pool.n, grain = fi_pool.grain, nchunks = fi_pool.nchunks;
        pthread_mutex_unlock(&fi_pool.mu);
        int64_t c;
        while ((c = fi_claim(seen, nchunks)) >= 0) fi_run(fn, ctx, n, grain, nchunks, c, slot);
        pthread_mutex_lock(&fi_pool.mu);
    }
    return NULL;
}

static void fi_start_workers(int wanted) {  /* under mu */
    if (wanted > FI_MAX_WORKERS) wanted = FI_MAX_WORKERS;
    while (fi_pool.workers < wanted) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, fi_worker, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;  /* fewer threads: the caller and the others do the work */
        fi_pool.workers++;
    }
}

/* Run fn over [0, n) in chunks of `grain` on up to `threads` threads (the caller included).
 * fn(ctx, begin, end, slot) gets a slot in [0, threads): slots are never run concurrently, so
 * per-slot scratch needs no locking. Returns how many slots may have been used. */
static int fi_parallel_for(fi_task_fn fn, void *ctx, int64_t n, int64_t grain, int threads) {
    if (n <= 0) return 1;
    if (grain < 1) grain = 1;
    int64_t nchunks = (n - 1) / grain + 1;
    if (threads > nchunks) threads = (int)nchunks;
    if (threads > FI_MAX_WORKERS + 1) threads = FI_MAX_WORKERS + 1;
    if (threads <= 1 || nchunks > 0x7fffffffLL) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    pthread_mutex_lock(&fi_pool.mu);
    int64_t t0 = fi_now();
    /* another thread's job is running, or the cores were taken lately: do this one alone */
    if (fi_pool.busy || t0 < fi_pool.alone_until) {
        pthread_mutex_unlock(&fi_pool.mu);
        fn(ctx, 0, n, 0);
        return 1;
    }
    fi_start_workers(threads - 1);
    uint32_t gen = ++fi_pool.gen;
    fi_pool.busy = 1;
    fi_pool.fn = fn;
    fi_pool.ctx = ctx;
    fi_pool.n = n;
    fi_pool.grain = grain;
    fi_pool.nchunks = nchunks;
    fi_pool.slots = threads;
    fi_pool.joined = 1;
    atomic_store(&fi_pool.done, 0);
    atomic_store(&fi_pool.claim, (uint64_t)gen << 32);
    if (fi_pool.workers) pthread_cond_broadcast(&fi_pool.work_cv);
    pthread_mutex_unlock(&fi_pool.mu);

    int64_t c;
    while ((c = fi_claim(gen, nchunks)) >= 0) fi_run(fn, ctx, n, grain, nchunks, c, 0);
    int64_t t1 = fi_now();
    /* Chunks claimed by workers may still run: wait for them, briefly spinning first, then
     * asleep so that a preempted worker can have this core. */
    for (int i = 0; i < 64 && atomic_load(&fi_pool.done) < nchunks; i++) sched_yield();
    pthread_mutex_lock(&fi_pool.mu);
    while (atomic_load(&fi_pool.done) < nchunks) pthread_cond_wait(&fi_pool.done_cv, &fi_pool.mu);
    int used = fi_pool.joined;
    fi_pool.busy = 0;
    int64_t t2 = fi_now(), own = t1 - t0, late = t2 - t1;
    if (late > own / 2 + FI_LATE_SLACK) {  /* a preempted worker held the caller: back off */
        int64_t b = fi_pool.backoff ? 2 * fi_pool.backoff : FI_BACKOFF_MIN;
        fi_pool.backoff = b < FI_BACKOFF_MAX ? b : FI_BACKOFF_MAX;
        fi_pool.alone_until = t2 + fi_pool.backoff;
    } else if (late <= own / 4 + FI_LATE_SLACK / 2) {
        fi_pool.backoff = 0;
    }
    pthread_mutex_unlock(&fi_pool.mu);
    return used;
}

static int fi_pool_workers(void) {
    pthread_mutex_lock(&fi_pool.mu);
    int w = fi_pool.workers;
    pthread_mutex_unlock(&fi_pool.mu);
    return w;
}

/* Whether jobs run on the caller alone now (the cores were taken lately); numba calls ask too. */
static int fi_pool_alone(void) {
    int64_t now = fi_now();
    pthread_mutex_lock(&fi_pool.mu);
    int alone = now < fi_pool.alone_until;
    pthread_mutex_unlock(&fi_pool.mu);
    return alone;
}

static void fi_pool_hold_alone(int64_t ns) {
    int64_t now = fi_now();
    pthread_mutex_lock(&fi_pool.mu);
    fi_pool.alone_until = now + ns;
    fi_pool.backoff = 0;
    pthread_mutex_unlock(&fi_pool.mu);
}

/* fork: the child has only the forking thread. Hold the lock across fork so the state is
 * consistent, then give the child a fresh, empty pool. */
static void fi_before_fork(void) { pthread_mutex_lock(&fi_pool.mu); }
static void fi_after_fork_parent(void) { pthread_mutex_unlock(&fi_pool.mu); }
static void fi_after_fork_child(void) {
    pthread_mutex_init(&fi_pool.mu, NULL);
    pthread_cond_init(&fi_pool.work_cv, NULL);
    pthread_cond_init(&fi_pool.done_cv, NULL);
    fi_pool.workers = 0;
    fi_pool.busy = 0;
    fi_pool.alone_until = 0;
    fi_pool.backoff = 0;
}

static void fi_pool_init(void) {
    pthread_atfork(fi_before_fork, fi_after_fork_parent, fi_after_fork_child);
}
#endif
#endif
