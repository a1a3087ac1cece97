/* fastdrop's worker threads for the Cython kernels.
 *
 *     fd_parallel(task, ctx, ntasks, nthreads)
 *
 * runs task(ctx, begin, end) over [0, ntasks) on the calling thread and up to
 * nthreads - 1 workers. With one thread, or one task, the caller runs it all and the pool
 * is never touched. The tasks are claimed in parts of about an eighth of a thread's
 * share, each thread taking the next part when it is done with its last: a worker the
 * system starts late (its core busy with another library's threads, say) takes fewer
 * parts, and one that has not started when the parts run out is taken back and never
 * waited for, so a parallel call is about as fast as a serial one at worst.
 *
 * Why not OpenMP: GNU OpenMP's idle threads spin for milliseconds after a parallel region
 * (GOMP_SPINCOUNT), taking the cores from the next BLAS call, and a process forked after a
 * parallel region hangs in its first one. Here an idle worker sleeps on its semaphore,
 * so nothing runs between calls, and a fork handler starts the child with no workers:
 * they are made again on its first parallel call.
 *
 * One parallel call runs at a time; a second one, from another thread, waits for it (each
 * uses every thread it asked for, so running both at once would only oversubscribe the
 * cores). Workers block the signals sent to the process: they go to the threads Python
 * runs.
 */
#ifndef FASTDROP_POOL_H
#define FASTDROP_POOL_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

typedef void (*fd_task)(void *ctx, int64_t begin, int64_t end);

/* A worker's state. The caller posts a worker (IDLE -> POSTED); the worker, woken, starts
 * (POSTED -> RUNNING) and ends (-> IDLE); or the caller takes the post back (POSTED ->
 * IDLE) and the worker, woken later, finds nothing to start. */
enum { FD_IDLE, FD_POSTED, FD_RUNNING };

typedef struct {
    sem_t wake;
    atomic_int state;
} fd_worker;

static struct {
    pthread_mutex_t run;  /* held by the parallel call in flight */
    pthread_mutex_t lock; /* with done: a RUNNING worker's end */
    pthread_cond_t done;
    fd_worker **workers; /* started workers, each allocated once */
    int size, capacity;
    fd_task task; /* the call in flight: set before any post */
    void *ctx;
    int64_t ntasks, part;
    atomic_llong next; /* the first task no thread has claimed */
} fd_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* Claim parts of the call in flight and run them until none is left. */
static void fd_claim(void)
{
    for (;;) {
        int64_t begin = atomic_fetch_add(&fd_pool.next, fd_pool.part);
        if (begin >= fd_pool.ntasks) return;
        int64_t end = begin + fd_pool.part;
        fd_pool.task(fd_pool.ctx, begin, end < fd_pool.ntasks ? end : fd_pool.ntasks);
    }
}

static void *fd_work(void *arg)
{
    fd_worker *w = (fd_worker *)arg;
    for (;;) {
        while (sem_wait(&w->wake) != 0) { /* EINTR */
        }
        int posted = FD_POSTED;
        if (!atomic_compare_exchange_strong(&w->state, &posted, FD_RUNNING))
            continue; /* a post taken back: the call is over */
        fd_claim();
        pthread_mutex_lock(&fd_pool.lock);
        atomic_store(&w->state, FD_IDLE);
        pthread_cond_broadcast(&fd_pool.done);
        pthread_mutex_unlock(&fd_pool.lock);
    }
    return NULL;
}

/* Start workers until there are want of them, or starting one fails; returns how many
 * there are. Called with fd_pool.run held. */
static int fd_spawn(int want)
{
    if (want > fd_pool.capacity) {
        fd_worker **grown = (fd_worker **)realloc(fd_pool.workers, (size_t)want * sizeof *grown);
        if (grown == NULL) return fd_pool.size;
        fd_pool.workers = grown;
        fd_pool.capacity = want;
    }
    sigset_t all, old;
    sigfillset(&all);
    /* Faults are raised in the thread that makes them, blocked or not: leave them to the
     * process's handlers (faulthandler's traceback, say). */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* a new thread inherits the mask */
    while (fd_pool.size < want) {
        fd_worker *w = (fd_worker *)calloc(1, sizeof *w);
        pthread_t thread;
        if (w == NULL) break;
        atomic_init(&w->state, FD_IDLE);
        if (sem_init(&w->wake, 0, 0) != 0) {
            free(w);
            break;
        }
        if (pthread_create(&thread, NULL, fd_work, w) != 0) {
            sem_destroy(&w->wake);
            free(w);
            break;
        }
        pthread_detach(thread);
        fd_pool.workers[fd_pool.size] = w;
        __atomic_store_n(&fd_pool.size, fd_pool.size + 1, __ATOMIC_RELAXED); /* see fastdrop_pool_workers */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return fd_pool.size;
}

/* fork(): the parent's handlers hold fd_pool.run across the fork, so no parallel call is
 * in flight in the child's copy of the pool. The child has only the forking thread, so it
 * forgets the workers (dead there) and starts new ones when it needs them. */
static void fd_before_fork(void) { pthread_mutex_lock(&fd_pool.run); }

static void fd_after_fork_parent(void) { pthread_mutex_unlock(&fd_pool.run); }

static void fd_after_fork_child(void)
{
    for (int k = 0; k < fd_pool.size; k++) {
        sem_destroy(&fd_pool.workers[k]->wake);
        free(fd_pool.workers[k]);
    }
    __atomic_store_n(&fd_pool.size, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&fd_pool.run);
}

static pthread_once_t fd_pool_once = PTHREAD_ONCE_INIT;

static void fd_pool_init(void)
{
    pthread_atfork(fd_before_fork, fd_after_fork_parent, fd_after_fork_child);
}

static void fd_parallel(fd_task task, void *ctx, int64_t ntasks, int nthreads)
{
    if (nthreads > ntasks) nthreads = (int)ntasks;
    if (nthreads <= 1) {
        if (ntasks > 0) task(ctx, 0, ntasks);
        return;
    }
    pthread_once(&fd_pool_once, fd_pool_init);
    pthread_mutex_lock(&fd_pool.run);
    int helpers = fd_spawn(nthreads - 1);
    if (helpers > nthreads - 1) helpers = nthreads - 1;
    int64_t part = ntasks / (8 * (int64_t)(helpers + 1));
    fd_pool.task = task;
    fd_pool.ctx = ctx;
    fd_pool.ntasks = ntasks;
    fd_pool.part = part > 0 ? part : 1;
    atomic_store(&fd_pool.next, 0);
    for (int k = 0; k < helpers; k++) { /* the stores above happen before each post */
        atomic_store(&fd_pool.workers[k]->state, FD_POSTED);
        sem_post(&fd_pool.workers[k]->wake);
    }
    fd_claim();
    for (int k = 0; k < helpers; k++) {
        fd_worker *w = fd_pool.workers[k];
        int posted = FD_POSTED;
        if (atomic_compare_exchange_strong(&w->state, &posted, FD_IDLE))
            continue; /* not started: taken back, and never waited for */
        pthread_mutex_lock(&fd_pool.lock);
        while (atomic_load(&w->state) != FD_IDLE) pthread_cond_wait(&fd_pool.done, &fd_pool.lock);
        pthread_mutex_unlock(&fd_pool.lock);
    }
    pthread_mutex_unlock(&fd_pool.run);
}

/* The workers started so far (read without waiting for a call in flight, which may be
 * starting more). Exported under a name of its own: it is also how threadpoolctl
 * recognises this library (fastdrop._engine.threadpool). */
__attribute__((visibility("default"))) int fastdrop_pool_workers(void)
{
    return __atomic_load_n(&fd_pool.size, __ATOMIC_RELAXED);
}

#endif
