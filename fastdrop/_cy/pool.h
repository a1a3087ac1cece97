/* fastdrop's worker threads for the Cython kernels.
 *
 *     fd_parallel(task, ctx, ntasks, nthreads)
 *
 * runs task(ctx, begin, end) over [0, ntasks) split into nthreads contiguous parts of
 * (nearly) equal size: part 0 on the calling thread, part k on worker k. With one thread,
 * or one task, the caller runs it all and the pool is never touched.
 *
 * Why not OpenMP: GNU OpenMP's idle threads spin for milliseconds after a parallel region
 * (GOMP_SPINCOUNT), taking the cores from the next BLAS call, and a process forked after a
 * parallel region hangs in its first one. Here an idle worker sleeps on its semaphore,
 * so nothing runs between calls, and a fork handler starts the child with no workers:
 * they are made again on its first parallel call.
 *
 * One parallel call runs at a time; a second one, from another thread, waits for it (each
 * uses every thread it asked for, so running both at once would only oversubscribe the
 * cores). Workers block every signal: signals go to the threads Python runs.
 */
#ifndef FASTDROP_POOL_H
#define FASTDROP_POOL_H

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

typedef void (*fd_task)(void *ctx, int64_t begin, int64_t end);

typedef struct {
    sem_t wake;         /* posted once per part to run */
    int64_t begin, end; /* the part: set before the post */
} fd_worker;

static struct {
    pthread_mutex_t run;  /* held by the parallel call in flight */
    pthread_mutex_t lock; /* guards pending */
    pthread_cond_t done;  /* pending reached 0 */
    fd_worker **workers;  /* started workers, each allocated once */
    int size, capacity;
    int pending; /* parts the workers have not finished */
    fd_task task;
    void *ctx;
} fd_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *fd_work(void *arg)
{
    fd_worker *w = (fd_worker *)arg;
    for (;;) {
        while (sem_wait(&w->wake) != 0) { /* EINTR */
        }
        fd_pool.task(fd_pool.ctx, w->begin, w->end);
        pthread_mutex_lock(&fd_pool.lock);
        if (--fd_pool.pending == 0) pthread_cond_signal(&fd_pool.done);
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
    pthread_sigmask(SIG_SETMASK, &all, &old); /* a new thread inherits the mask */
    while (fd_pool.size < want) {
        fd_worker *w = (fd_worker *)calloc(1, sizeof *w);
        pthread_t thread;
        if (w == NULL) break;
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
        fd_pool.workers[fd_pool.size++] = w;
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
    fd_pool.size = 0;
    fd_pool.pending = 0;
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
    int parts = 1 + fd_spawn(nthreads - 1);
    if (parts > nthreads) parts = nthreads;
    fd_pool.task = task;
    fd_pool.ctx = ctx;
    fd_pool.pending = parts - 1;
    for (int k = 1; k < parts; k++) {
        fd_worker *w = fd_pool.workers[k - 1];
        w->begin = ntasks * k / parts;
        w->end = ntasks * (k + 1) / parts;
        sem_post(&w->wake);
    }
    task(ctx, 0, ntasks / parts);
    pthread_mutex_lock(&fd_pool.lock);
    while (fd_pool.pending > 0) pthread_cond_wait(&fd_pool.done, &fd_pool.lock);
    pthread_mutex_unlock(&fd_pool.lock);
    pthread_mutex_unlock(&fd_pool.run);
}

/* The workers started so far. Exported under a name of its own: it is also how
 * threadpoolctl recognises this library (fastdrop._threadpool). */
__attribute__((visibility("default"))) int fastdrop_pool_workers(void)
{
    pthread_mutex_lock(&fd_pool.run);
    int size = fd_pool.size;
    pthread_mutex_unlock(&fd_pool.run);
    return size;
}

#endif
