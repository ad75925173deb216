// A team of persistent worker threads for the kernels' parallel loops and the pieces of a batch.
//
// Why not libdispatch's concurrentPerform: on virtual machines waking a sleeping thread costs tens to hundreds of
// microseconds (measured 60-120 us median per call on a 2-vCPU VM), and a small network's training step has several
// parallel regions a few microseconds apart. Workers here poll for the next job for a short while after each one
// (yielding the core to any other runnable thread as they do), so back-to-back regions start at once; after
// `spin_ns` without work they sleep on a condition variable.
//
// A job waits for each of its workers to finish, so none can still be reading one job's state when the next is
// posted. One atomic word carries both the job's number and how many workers take part in it; a worker left out
// (a job on fewer threads than the team has) sleeps until the next job instead of polling.
#define _GNU_SOURCE
#include "ck_team.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_WORKERS 63

static pthread_mutex_t park_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked;                                   // workers asleep, guarded by park_mutex

static atomic_ulong generation;                      // (job number << 8) | workers taking part
#define WIDTH_MASK 0xfful
static atomic_int busy;                              // a caller owns the team
static atomic_long next_index;
static atomic_int finished;                          // workers of the current job that are done with it
static ck_team_item job_item;
static void *job_context;
static long job_count;

static int started;                                  // workers created so far (only by the caller owning the team)
static unsigned long first_seen[MAX_WORKERS];        // the generation current when each worker was created
static _Atomic long spin_ns = 200000;
static __thread int inside_item;

static inline long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void run_items(void) {
    inside_item = 1;
    for (;;) {
        long i = atomic_fetch_add_explicit(&next_index, 1, memory_order_relaxed);
        if (i >= job_count) break;
        job_item(job_context, i);
    }
    inside_item = 0;
}

static unsigned long wait_for_job(unsigned long seen, int poll) {
    long deadline = now_ns() + (poll ? atomic_load_explicit(&spin_ns, memory_order_relaxed) : 0);
    for (;;) {
        for (int k = 0; k < 64; k++) {
            unsigned long g = atomic_load_explicit(&generation, memory_order_acquire);
            if (g != seen) return g;
            cpu_relax();
        }
        if (now_ns() > deadline) break;
        sched_yield();                               // another runnable thread (BLAS's, say) gets this core
    }
    pthread_mutex_lock(&park_mutex);
    parked += 1;
    unsigned long g;
    while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&park_cond, &park_mutex);
    parked -= 1;
    pthread_mutex_unlock(&park_mutex);
    return g;
}

static void *worker_main(void *argument) {
    int id = (int)(long)argument;
    unsigned long seen = first_seen[id];
    int took_part = 1;
    for (;;) {
        seen = wait_for_job(seen, took_part);
        took_part = id < (int)(seen & WIDTH_MASK);
        if (!took_part) continue;                    // its job does not wait for it
        run_items();
        atomic_fetch_add_explicit(&finished, 1, memory_order_release);
    }
    return 0;
}

static int ensure_workers(int count) {
    if (count > MAX_WORKERS) count = MAX_WORKERS;
    while (started < count) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        first_seen[started] = atomic_load(&generation);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(long)started);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        started += 1;
    }
    return started;
}

static void run_inline(long count, ck_team_item item, void *context) {
    for (long i = 0; i < count; i++) item(context, i);
}

void ck_team_run(long count, int threads, ck_team_item item, void *context) {
    if (count <= 0) return;
    int width = threads - 1;
    if (width > count - 1) width = (int)(count - 1);
    if (width <= 0 || inside_item) { run_inline(count, item, context); return; }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) { run_inline(count, item, context); return; }
    int team = ensure_workers(width);
    if (width > team) width = team;
    if (width <= 0) { atomic_store(&busy, 0); run_inline(count, item, context); return; }

    job_item = item;
    job_context = context;
    job_count = count;
    atomic_store_explicit(&next_index, 0, memory_order_relaxed);
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    unsigned long number = (atomic_load_explicit(&generation, memory_order_relaxed) >> 8) + 1;
    atomic_store_explicit(&generation, (number << 8) | (unsigned long)width, memory_order_release);
    pthread_mutex_lock(&park_mutex);
    if (parked > 0) pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_mutex);

    run_items();
    int spins = 0;
    while (atomic_load_explicit(&finished, memory_order_acquire) < width) {
        cpu_relax();
        if (++spins % 256 == 0) sched_yield();
    }
    atomic_store_explicit(&busy, 0, memory_order_release);
}

void ck_team_set_spin_microseconds(long microseconds) {
    atomic_store(&spin_ns, microseconds < 0 ? 0 : microseconds * 1000);
}
