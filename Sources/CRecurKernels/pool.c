/* A persistent worker pool that splits the rows of one matrix-vector product across threads.
 *
 * A product is cut into chunks of rows (several per thread); the caller and the workers take chunks from
 * an atomic counter until none is left, so a worker that is not running (the machine is busy) costs
 * nothing: the caller does its share. Workers spin for a short while after each product (the next step
 * usually follows within microseconds), then sleep on a condition variable; no thread is created per
 * product. The chunk counter carries the job's number in its high 32 bits, so that a worker that wakes
 * late cannot take a chunk of the next job by mistake; a chunk is valid when the counter's job number
 * equals that of `limit` (job number and chunk count) and its index is below the count. The job's
 * parameters are written before the counter is reset (release) and read only after a valid chunk was
 * taken (acquire); the caller changes them again only when every chunk is done. */
#include "internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sched.h>
#include <time.h>

#define SPIN_NS 50000L    /* how long an idle worker spins before it sleeps */
#define CHUNKS_PER_THREAD 4

typedef struct {
    int dtype;            /* an rk_dtype */
    float *y;
    const void *w;
    const float *x;
    long row0, rows, cols, chunk, chunks;   /* rows [row0, row0 + rows) of the matrix at w */
    int acc;
} rk_job;

typedef struct { struct rk_pool *pool; int index; } rk_worker_arg;

struct rk_pool {
    int n;                            /* threads in all, the caller included */
    pthread_t *threads;
    atomic_int busy;                  /* held by the caller of the running product */
    atomic_uint gen;                  /* incremented for each product */
    atomic_ullong next;               /* job number << 32 | the next chunk to take */
    atomic_ullong limit;              /* job number << 32 | number of chunks */
    atomic_long done;                 /* chunks finished */
    unsigned long long jobs;          /* jobs published (caller side, under busy) */
    atomic_int sleepers;
    atomic_int stop;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    rk_job job;
    void *xq;                         /* x quantized once per product (q8, q4, q8r) */
    size_t xq_cap;
    rk_worker_arg *args;
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void run_chunk(struct rk_pool *p, long i) {
    const rk_job *j = &p->job;
    long r0 = i * j->chunk;
    if (r0 >= j->rows) return;
    long n = j->rows - r0 < j->chunk ? j->rows - r0 : j->chunk;
    rk_matvec_prepared(j->dtype, j->y + r0, j->w, j->x, p->xq, j->row0 + r0, n, j->cols, j->acc);
}

/* Takes and runs chunks until none is left. */
static void take_chunks(struct rk_pool *p) {
    for (;;) {
        unsigned long long v = atomic_fetch_add_explicit(&p->next, 1, memory_order_acq_rel);
        unsigned long long lim = atomic_load_explicit(&p->limit, memory_order_acquire);
        if ((v >> 32) != (lim >> 32) || (v & 0xFFFFFFFFull) >= (lim & 0xFFFFFFFFull)) return;
        run_chunk(p, (long)(v & 0xFFFFFFFFull));
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

static void *worker(void *arg) {
    struct rk_pool *p = ((rk_worker_arg *)arg)->pool;
    unsigned seen = atomic_load(&p->gen);
    for (;;) {
        unsigned g;
        long start = 0;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
            relax();
            if (++spins % 256) continue;
            long t = now_ns();
            if (!start) { start = t; continue; }
            if (t - start < SPIN_NS) continue;
            pthread_mutex_lock(&p->mutex);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mutex);
            start = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        take_chunks(p);
    }
}

rk_pool *rk_pool_create(int threads) {
    if (threads < 2) return NULL;
    struct rk_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = threads;
    p->threads = calloc((size_t)threads, sizeof(pthread_t));
    p->args = calloc((size_t)threads, sizeof *p->args);
    if (!p->threads || !p->args) { free(p->threads); free(p->args); free(p); return NULL; }
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 1; i < threads; i++) {
        p->args[i].pool = p;
        p->args[i].index = i;
        if (pthread_create(&p->threads[i], NULL, worker, &p->args[i]) != 0) {
            p->n = i;   /* run with the workers that did start */
            break;
        }
    }
    if (p->n < 2) { rk_pool_destroy(p); return NULL; }
    return p;
}

void rk_pool_destroy(rk_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mutex);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->xq);
    free(p->threads);
    free(p->args);
    free(p);
}

int rk_pool_threads(const rk_pool *p) { return p ? p->n : 1; }

static void single(int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols, int acc) {
    rk_matvec_rows_at(rk_level(), dtype, y, w, x, row0, rows, cols, acc);
}

void rk_pool_matvec(rk_pool *p, int dtype, float *y, const void *w, const float *x, long row0, long rows, long cols,
                    int acc) {
    if (!p || rows < 8 * p->n || cols <= 0 || atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        single(dtype, y, w, x, row0, rows, cols, acc);   /* small, or another caller holds the pool */
        return;
    }
    const size_t need = rk_x_bytes(dtype, cols);
    if (need > p->xq_cap) {
        void *b = aligned_alloc(64, (need + 63) & ~(size_t)63);
        if (!b) {
            atomic_store_explicit(&p->busy, 0, memory_order_release);
            single(dtype, y, w, x, row0, rows, cols, acc);
            return;
        }
        free(p->xq);
        p->xq = b;
        p->xq_cap = need;
    }
    rk_prepare_x(dtype, p->xq, x, cols);
    long chunk = (rows + p->n * CHUNKS_PER_THREAD - 1) / (p->n * CHUNKS_PER_THREAD);
    chunk = (chunk + 15) & ~15L;   /* whole groups of rows for the kernels, and whole cache lines of y */
    long chunks = (rows + chunk - 1) / chunk;
    p->job = (rk_job){dtype, y, w, x, row0, rows, cols, chunk, chunks, acc};
    unsigned long long job = (++p->jobs) & 0xFFFFFFFFull;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->limit, job << 32 | (unsigned long long)chunks, memory_order_relaxed);
    atomic_store_explicit(&p->next, job << 32, memory_order_release);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    take_chunks(p);
    /* Chunks a worker took and is still running. If that worker lost its processor, give ours up. */
    for (long spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < chunks; spins++) {
        if (spins < 2000) relax(); else sched_yield();
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
