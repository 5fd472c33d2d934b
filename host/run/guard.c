/* The count hook, the signals and the watchdog of a run. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "exit_codes.h"
#include "guard.h"

#define HOOK_COUNT 1000   /* instructions between checks: cheap, and fast enough to stop */
#define GRACE_S 3.0       /* how long a stopping script may take before the watchdog acts */

int limits_exit_code(enum stop_reason r)
{
    switch (r) {
    case STOP_TIME: return EXIT_TIME_LIMIT;
    case STOP_MEMORY: return EXIT_MEMORY_LIMIT;
    case STOP_SIGINT: return EXIT_SIGINT;
    case STOP_SIGTERM: return EXIT_SIGTERM;
    default: return EXIT_OK;
    }
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    limits_check(L);
}

void limits_hook(lua_State *L)
{
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
}

/* ---- signals and watchdog ------------------------------------------------------------ */

static struct limits *watched;
static sem_t wake;
static pthread_t thread;
static int running;
static volatile sig_atomic_t quit;

static void on_hup(int sig)
{
    (void)sig;
    if (watched)
        watched->reopen = 1;
}

static void on_signal(int sig)
{
    int saved = errno;
    if (watched) {
        if (watched->stop != STOP_NONE && (sig == SIGINT || sig == SIGTERM) &&
            (watched->stop == STOP_SIGINT || watched->stop == STOP_SIGTERM)) {
            static const char msg[] = "ecaphost: interrupted again, exiting now\n";
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            _exit(sig == SIGINT ? EXIT_SIGINT : EXIT_SIGTERM);
        }
        if (watched->stop == STOP_NONE)
            watched->stop = sig == SIGINT ? STOP_SIGINT : STOP_SIGTERM;
    }
    sem_post(&wake);
    errno = saved;
}

static void *watchdog(void *arg)
{
    struct limits *lim = arg;
    double stop_seen = 0;
    for (;;) {
        struct timespec ts;
        double t;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        sem_timedwait(&wake, &ts);
        if (quit)
            return NULL;
        t = now_monotonic();
        limits_poll(lim); /* the hook may be starved by a long C call */
        if (lim->stop != STOP_NONE && stop_seen == 0)
            stop_seen = t;
        if (stop_seen > 0 && t - stop_seen >= GRACE_S) {
            char msg[160];
            int n = snprintf(msg, sizeof msg, "ecaphost: %s; the script did not stop within %.0f s "
                             "(a long C call), ending the process\n", limits_message(lim), GRACE_S);
            ssize_t w = write(2, msg, (size_t)n);
            (void)w;
            _exit(limits_exit_code((enum stop_reason)lim->stop));
        }
    }
}

int watchdog_start(struct limits *lim)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sem_init(&wake, 0, 0))
        return -1;
    watched = lim;
    quit = 0;
    if (pthread_create(&thread, NULL, watchdog, lim)) {
        watched = NULL;
        sem_destroy(&wake);
        return -1;
    }
    running = 1;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

void watchdog_stop(void)
{
    if (!running)
        return;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    quit = 1;
    sem_post(&wake);
    pthread_join(thread, NULL);
    sem_destroy(&wake);
    watched = NULL;
    running = 0;
}
