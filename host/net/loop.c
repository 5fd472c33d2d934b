/* The event loop: ready queue of tasks, timers, and the curl multi handle.
 *
 * Transfers are driven by curl's socket interface (curl_multi_socket_action): curl names the
 * sockets to watch (on_socket) and when its next timeout is due (on_timer); one poll(2) per turn
 * waits on them, and curl acts on the ready sockets only. curl_multi_perform would instead look
 * at every transfer each turn, one poll(2) each: with 128 in flight that was 11 system calls per
 * call made, most of the client's CPU time (bench/run.sh --journal, perf and strace -c). */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "http.h"
#include "lib/limits.h"
#include "lib/stack.h"
#include "journal.h"
#include "ledger.h"
#include "loop.h"
#include "options.h"

#define POLL_SLICE_MS 100 /* longest sleep in poll: signals and deadlines are seen this fast */
#define SPARE_EASY 16     /* finished easy handles kept for reuse */
#define CONNECTIONS_DEFAULT 64 /* connections kept when --max-in-flight sets no number */

struct timer {
    double at;
    struct task *task;
};

struct loop {
    lua_State *L;                 /* main thread of the state: scratch stack for the loop */
    const struct net_options *opts;
    struct limits *lim;
    CURLM *multi;
    struct curl_slist *common_headers;
    struct task *ready_head, *ready_tail;
    struct timer *timers;
    size_t n_timers, cap_timers;
    struct xfer *queue_head, *queue_tail; /* waiting for a slot (--max-in-flight, --rate) */
    int in_flight;
    double next_slot;                     /* --rate: earliest start of the next transfer */
    struct task **all;                    /* every live task, freed at the end */
    size_t n_all, cap_all;
    CURL *spare[SPARE_EASY];              /* finished easy handles, reset for reuse */
    int n_spare;
    struct ledger *ledger;                /* what the call path remembers across calls */
    int watch_fd;                         /* a descriptor a wait reads (the consent prompt), or -1 */
    struct task *watch_task;              /* its yielded task, or NULL when a drive waits on it */
    struct pollfd *fds;                   /* the sockets curl watches (on_socket) */
    struct pollfd *ready;                 /* scratch: the ready ones of a turn */
    size_t n_fds, cap_fds;
    double curl_due;                      /* curl's next timeout (monotonic), or < 0: none */
};

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
static int on_timer(CURLM *m, long timeout_ms, void *userp);

struct loop *loop_new(lua_State *L, const struct net_options *opts, struct limits *lim, char *err,
                      size_t errlen)
{
    struct loop *lp = calloc(1, sizeof *lp);
    long conns;
    if (!lp)
        goto oom;
    lp->L = L;
    lp->opts = opts;
    lp->lim = lim;
    lp->watch_fd = -1;
    lp->multi = curl_multi_init();
    lp->common_headers = http_common_headers(opts);
    lp->ledger = ledger_new();
    if (!lp->multi || !lp->common_headers || !lp->ledger)
        goto oom;
    /* One connection per host is reused across calls; parallel calls open more, capped. */
    conns = opts->max_in_flight > 0 ? opts->max_in_flight : CONNECTIONS_DEFAULT;
    curl_multi_setopt(lp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(lp->multi, CURLMOPT_MAXCONNECTS, conns);
    curl_multi_setopt(lp->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(lp->multi, CURLMOPT_SOCKETDATA, lp);
    curl_multi_setopt(lp->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(lp->multi, CURLMOPT_TIMERDATA, lp);
    lp->curl_due = -1;
    *(struct task **)lua_getextraspace(L) = NULL;
    return lp;
oom:
    snprintf(err, errlen, "cannot set up the HTTP client (out of memory)");
    if (lp) {
        if (lp->multi)
            curl_multi_cleanup(lp->multi);
        http_headers_free(lp->common_headers);
        ledger_free(lp->ledger);
        free(lp);
    }
    return NULL;
}


void loop_free(struct loop *lp)
{
    if (!lp)
        return;
    for (size_t i = 0; i < lp->n_all; i++)
        free(lp->all[i]);
    free(lp->all);
    free(lp->timers);
    while (lp->n_spare > 0)
        curl_easy_cleanup(lp->spare[--lp->n_spare]);
    curl_multi_cleanup(lp->multi); /* may still tell on_socket: the arrays go after it */
    http_headers_free(lp->common_headers);
    ledger_free(lp->ledger);
    free(lp->fds);
    free(lp->ready);
    free(lp);
}

struct ledger *loop_ledger(struct loop *lp)
{
    return lp->ledger;
}

/* Easy handles are reused: a reset handle costs far less than a new one on the per-call path. */
void *loop_easy_get(struct loop *lp)
{
    return lp->n_spare > 0 ? lp->spare[--lp->n_spare] : curl_easy_init();
}

void loop_easy_put(struct loop *lp, void *e)
{
    if (lp->n_spare < (int)(sizeof lp->spare / sizeof lp->spare[0])) {
        curl_easy_reset(e);
        lp->spare[lp->n_spare++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}
lua_State *loop_main(struct loop *lp) { return lp->L; }
const struct net_options *loop_options(struct loop *lp) { return lp->opts; }
struct limits *loop_limits(struct loop *lp) { return lp->lim; }
struct curl_slist *loop_common_headers(struct loop *lp);
struct curl_slist *loop_common_headers(struct loop *lp) { return lp->common_headers; }

/* ---- tasks ------------------------------------------------------------------------------- */

struct task *task_of(lua_State *L)
{
    return *(struct task **)lua_getextraspace(L);
}

int loop_can_yield(lua_State *L)
{
    return task_of(L) != NULL && lua_isyieldable(L);
}

static int track(struct loop *lp, struct task *t)
{
    if (lp->n_all == lp->cap_all) {
        size_t cap = lp->cap_all ? lp->cap_all * 2 : 16;
        struct task **a = realloc(lp->all, cap * sizeof *a);
        if (!a)
            return -1;
        lp->all = a;
        lp->cap_all = cap;
    }
    lp->all[lp->n_all++] = t;
    return 0;
}

static void untrack(struct loop *lp, struct task *t)
{
    for (size_t i = 0; i < lp->n_all; i++)
        if (lp->all[i] == t) {
            lp->all[i] = lp->all[--lp->n_all];
            return;
        }
}

struct task *task_spawn(struct loop *lp, lua_State *L, int nargs, struct task *parent,
                        const void *scope, task_done_fn done, void *ud)
{
    struct task *t = calloc(1, sizeof *t);
    if (!t || track(lp, t)) {
        free(t);
        luaL_error(L, "out of memory");
        return NULL;
    }
    t->co = lua_newthread(L);
    *(struct task **)lua_getextraspace(t->co) = t;
    lua_insert(L, -(nargs + 2));          /* thread below the function and its arguments */
    lua_xmove(L, t->co, nargs + 1);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->nargs = nargs;
    t->parent = parent;
    t->scope = scope;
    t->done = done;
    t->ud = ud;
    task_wake(lp, t);
    return t;
}

void task_wake(struct loop *lp, struct task *t)
{
    if (t->ready || t->finished)
        return;
    t->ready = 1;
    t->next_ready = NULL;
    if (lp->ready_tail)
        lp->ready_tail->next_ready = t;
    else
        lp->ready_head = t;
    lp->ready_tail = t;
}

/* A finished task leaves no timer behind (it can only have one if something resumed it
 * early; the sandbox prevents that, this keeps a stray wake-up from touching freed memory). */
static void drop_timers(struct loop *lp, const struct task *t)
{
    for (size_t i = 0; i < lp->n_timers;)
        if (lp->timers[i].task == t)
            lp->timers[i] = lp->timers[--lp->n_timers];
        else
            i++;
}

/* Resumes t once. A yield must have been announced (t->waiting) by the call that made it:
 * anything else is a script yielding from its main chunk, which plain Lua refuses too. */
static void resume(struct loop *lp, lua_State *from, struct task *t)
{
    int nres = 0, status;
    int nargs = t->nargs;
    STACK_ENTER(lp->L); /* the main thread is the done callbacks' scratch stack */
    t->nargs = 0;
    t->ready = 0;
    t->waiting = 0; /* each yield announces itself again (loop_wait) */
    status = lua_resume(t->co, from, nargs, &nres);
    if (status == LUA_YIELD) {
        if (t->waiting || t->ready) { /* announced; or woken already (a transfer that failed at once) */
            STACK_LEAVE(lp->L, 0);
            return;
        }
        lua_pop(t->co, nres);
        lua_pushliteral(t->co, "attempt to yield from outside a coroutine");
        status = LUA_ERRRUN;
        nres = 1;
    }
    t->finished = 1;
    t->status = status;
    if (t->done)
        t->done(lp, t, status, t->ud);
    /* Close pending to-be-closed variables of a task that died, then let it be collected. */
    if (status != LUA_OK)
        lua_resetthread(t->co);
    *(struct task **)lua_getextraspace(t->co) = NULL;
    luaL_unref(lp->L, LUA_REGISTRYINDEX, t->ref);
    drop_timers(lp, t);
    untrack(lp, t);
    free(t);
    STACK_LEAVE(lp->L, 0);
}

static int in_scope(const struct task *t, const void *scope)
{
    for (; t; t = t->parent)
        if (t->scope == scope)
            return 1;
    return 0;
}

/* Runs every ready task (in scope, when scope is given). */
static void run_ready(struct loop *lp, lua_State *from, const void *scope, int all)
{
    struct task *keep_head = NULL, *keep_tail = NULL;
    while (lp->ready_head) {
        struct task *t = lp->ready_head;
        lp->ready_head = t->next_ready;
        if (!lp->ready_head)
            lp->ready_tail = NULL;
        t->next_ready = NULL;
        if (lp->lim->stop != STOP_NONE) {
            t->ready = 0; /* a stopping run resumes nothing more */
            continue;
        }
        if (all || (scope && in_scope(t, scope))) {
            resume(lp, from, t);
        } else {
            if (keep_tail)
                keep_tail->next_ready = t;
            else
                keep_head = t;
            keep_tail = t;
        }
    }
    /* Tasks outside the scope wait for the outer loop, in their order. */
    if (keep_head) {
        keep_tail->next_ready = NULL;
        lp->ready_head = keep_head;
        lp->ready_tail = keep_tail;
    }
}

/* ---- timers ------------------------------------------------------------------------------ */

int loop_timer(struct loop *lp, double at, struct task *t)
{
    if (lp->n_timers == lp->cap_timers) {
        size_t cap = lp->cap_timers ? lp->cap_timers * 2 : 8;
        struct timer *a = realloc(lp->timers, cap * sizeof *a);
        if (!a)
            return -1;
        lp->timers = a;
        lp->cap_timers = cap;
    }
    lp->timers[lp->n_timers].at = at;
    lp->timers[lp->n_timers].task = t;
    lp->n_timers++;
    return 0;
}

/* Wakes due timers; returns ms until the next one (or POLL_SLICE_MS). */
static long fire_timers(struct loop *lp, double now)
{
    double next = now + POLL_SLICE_MS / 1000.0;
    for (size_t i = 0; i < lp->n_timers;) {
        if (lp->timers[i].at <= now) {
            task_wake(lp, lp->timers[i].task);
            lp->timers[i] = lp->timers[--lp->n_timers];
        } else {
            if (lp->timers[i].at < next)
                next = lp->timers[i].at;
            i++;
        }
    }
    return (long)((next - now) * 1000.0 + 0.999);
}

/* ---- transfers --------------------------------------------------------------------------- */

/* Room for one more watched socket (and as many ready ones). */
static int fds_grow(struct loop *lp)
{
    size_t cap = lp->cap_fds ? lp->cap_fds * 2 : 16;
    struct pollfd *f, *r;
    if (lp->n_fds < lp->cap_fds)
        return 0;
    if (!(f = realloc(lp->fds, cap * sizeof *f)))
        return -1;
    lp->fds = f;
    if (!(r = realloc(lp->ready, cap * sizeof *r)))
        return -1;
    lp->ready = r;
    lp->cap_fds = cap;
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what (or stop). A socket's slot in fds, plus one, is
 * kept by curl for us (curl_multi_assign; socketp, NULL = not watched yet). */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct loop *lp = userp;
    size_t slot = (size_t)(uintptr_t)socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (slot && slot <= lp->n_fds) {
            size_t last = --lp->n_fds;
            if (slot - 1 != last) { /* the last one moves into the hole */
                lp->fds[slot - 1] = lp->fds[last];
                curl_multi_assign(lp->multi, lp->fds[slot - 1].fd, (void *)(uintptr_t)slot);
            }
        }
        return 0;
    }
    if (!slot) {
        if (fds_grow(lp) != 0)
            return -1; /* out of memory: curl aborts the transfers in progress (they fail) */
        lp->fds[lp->n_fds].fd = s;
        slot = ++lp->n_fds;
        curl_multi_assign(lp->multi, s, (void *)(uintptr_t)slot);
    }
    lp->fds[slot - 1].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                                       ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    lp->fds[slot - 1].revents = 0;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants CURL_SOCKET_TIMEOUT acted on in timeout_ms (-1: never). */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    struct loop *lp = userp;
    (void)m;
    lp->curl_due = timeout_ms < 0 ? -1 : now_monotonic() + (double)timeout_ms / 1000.0;
    return 0;
}

static int start(struct loop *lp, struct xfer *x)
{
    CURLMcode mc = curl_multi_add_handle(lp->multi, x->easy);
    if (mc != CURLM_OK) {
        x->result = CURLE_FAILED_INIT;
        snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
        x->state = X_DONE;
        loop_xfer_done(lp, x);
        return -1;
    }
    x->state = X_ACTIVE;
    lp->in_flight++;
    if (lp->opts->rate > 0)
        lp->next_slot = (lp->next_slot > now_monotonic() ? lp->next_slot : now_monotonic()) + 1.0 / lp->opts->rate;
    return 0;
}

static int slot_free(struct loop *lp, double now)
{
    if (lp->opts->max_in_flight > 0 && lp->in_flight >= lp->opts->max_in_flight)
        return 0;
    return lp->opts->rate <= 0 || now >= lp->next_slot;
}

/* Starts queued transfers while slots are free; returns ms until the rate allows the next. */
/* Group commit: the intents of every call queued in this turn of the loop share one fsync,
 * made before the first of them starts. If the journal cannot be written, the journaled
 * calls fail unsent (a call whose intent is not on disk must not leave). */
static void sync_journal(struct loop *lp)
{
    struct journal *j = ledger_journal(lp->ledger);
    struct xfer **pp;
    int e;
    if (j && lp->lim->reopen) { /* SIGHUP after logrotate moved the file */
        size_t len;
        const char *run = ledger_run_line(lp->ledger, &len);
        lp->lim->reopen = 0;
        /* on failure the old file is kept: nothing is lost; a new file begins with the run line,
         * so it can be read (and resumed from) on its own */
        if (journal_reopen(j) == 0 && run)
            journal_append(j, run, len);
    }
    if (!j || !journal_pending(j) || journal_sync(j) == 0)
        return;
    e = errno;
    for (pp = &lp->queue_head; *pp;) {
        struct xfer *x = *pp;
        if (!x->journaled) {
            pp = &x->next_queued;
            continue;
        }
        *pp = x->next_queued;
        if (lp->queue_tail == x) {
            lp->queue_tail = NULL;
            for (struct xfer *t = lp->queue_head; t; t = t->next_queued)
                lp->queue_tail = t;
        }
        x->next_queued = NULL;
        x->result = CURLE_WRITE_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf, "the call journal cannot be written (%s): not sent",
                 strerror(e));
        x->state = X_DONE;
        loop_xfer_done(lp, x);
    }
}

static long start_queued(struct loop *lp)
{
    double now;
    sync_journal(lp);
    now = now_monotonic();
    while (lp->queue_head && slot_free(lp, now)) {
        struct xfer *x = lp->queue_head;
        lp->queue_head = x->next_queued;
        if (!lp->queue_head)
            lp->queue_tail = NULL;
        x->next_queued = NULL;
        start(lp, x);
        now = now_monotonic();
    }
    if (lp->queue_head && lp->opts->rate > 0 && now < lp->next_slot)
        return (long)((lp->next_slot - now) * 1000.0 + 0.999);
    return POLL_SLICE_MS;
}

void loop_submit(struct loop *lp, struct xfer *x)
{
    x->next_queued = NULL;
    if (!lp->queue_head && !x->journaled && slot_free(lp, now_monotonic())) {
        start(lp, x);
        return;
    }
    x->state = X_QUEUED;
    if (lp->queue_tail)
        lp->queue_tail->next_queued = x;
    else
        lp->queue_head = x;
    lp->queue_tail = x;
}

void loop_detach(struct loop *lp, struct xfer *x)
{
    if (x->state == X_ACTIVE) {
        curl_multi_remove_handle(lp->multi, x->easy);
        lp->in_flight--;
    } else if (x->state == X_QUEUED) {
        struct xfer **pp = &lp->queue_head, *prev = NULL;
        while (*pp && *pp != x) {
            prev = *pp;
            pp = &(*pp)->next_queued;
        }
        if (*pp) {
            *pp = x->next_queued;
            if (lp->queue_tail == x)
                lp->queue_tail = prev;
        }
    }
    x->state = X_DONE;
    x->waiter = NULL;
}

void loop_xfer_done(struct loop *lp, struct xfer *x)
{
    if (x->waiter)
        task_wake(lp, x->waiter);
}

int loop_fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0; /* POLLHUP too: the read then sees the end */
}

void loop_watch_fd(struct loop *lp, int fd, struct task *t)
{
    lp->watch_fd = fd;
    lp->watch_task = fd >= 0 ? t : NULL;
}

int loop_watching(const struct loop *lp)
{
    return lp->watch_fd >= 0;
}

/* curl acts on every socket poll found ready, then on its timeout if due. The ready ones are
 * copied first: curl's callbacks change fds while it acts. */
static void act(struct loop *lp, int nready)
{
    size_t n = 0;
    int running = 0;
    for (size_t i = 0; i < lp->n_fds && nready > 0; i++) {
        if (!lp->fds[i].revents)
            continue;
        lp->ready[n++] = lp->fds[i];
        nready--;
    }
    for (size_t i = 0; i < n; i++) {
        short r = lp->ready[i].revents;
        int ev = ((r & POLLIN) ? CURL_CSELECT_IN : 0) | ((r & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                 ((r & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(lp->multi, lp->ready[i].fd, ev, &running);
    }
    if (lp->curl_due >= 0 && now_monotonic() >= lp->curl_due) {
        lp->curl_due = -1; /* one-shot: curl sets the next one (on_timer) */
        curl_multi_socket_action(lp->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}

/* Waits up to timeout_ms for network activity (or the watched descriptor) and finishes what
 * completed. */
static void poll_once(struct loop *lp, long timeout_ms)
{
    int left, nready;
    long rate_ms;
    size_t nfds;
    CURLMsg *m;
    rate_ms = start_queued(lp);
    if (rate_ms < timeout_ms)
        timeout_ms = rate_ms;
    if (lp->curl_due >= 0) {
        double ms = (lp->curl_due - now_monotonic()) * 1000.0;
        long due_ms = ms <= 0 ? 0 : (long)(ms + 0.999);
        if (due_ms < timeout_ms)
            timeout_ms = due_ms;
    }
    /* the watched descriptor (the consent prompt's stdin) rides after curl's sockets */
    nfds = lp->n_fds;
    if (lp->watch_fd >= 0 && fds_grow(lp) == 0)
        lp->fds[nfds++] = (struct pollfd){.fd = lp->watch_fd, .events = POLLIN};
    nready = poll(lp->fds, (nfds_t)nfds, timeout_ms < 0 ? 0 : (int)timeout_ms);
    act(lp, nready > 0 ? nready : 0);
    while ((m = curl_multi_info_read(lp->multi, &left))) {
        struct xfer *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->result = m->data.result;
        curl_multi_remove_handle(lp->multi, x->easy);
        lp->in_flight--;
        x->state = X_DONE;
        loop_xfer_done(lp, x);
    }
    if (lp->watch_task && loop_fd_readable(lp->watch_fd)) {
        struct task *t = lp->watch_task;
        lp->watch_task = NULL;
        task_wake(lp, t);
    }
    start_queued(lp);
}

static long next_wait(struct loop *lp)
{
    return lp->ready_head ? 0 : fire_timers(lp, now_monotonic());
}

int loop_run(struct loop *lp, const int *finished)
{
    while (!*finished) {
        run_ready(lp, lp->L, NULL, 1);
        if (*finished)
            break;
        if (lp->lim->stop != STOP_NONE)
            return -1;
        poll_once(lp, next_wait(lp));
        fire_timers(lp, now_monotonic());
        limits_poll(lp->lim);
    }
    return lp->lim->stop != STOP_NONE ? -1 : 0;
}

void loop_cancel(struct loop *lp)
{
    loop_watch_fd(lp, -1, NULL);
    if (lp->n_all == 0)
        return;
    lp->ready_head = lp->ready_tail = NULL;
    lp->n_timers = 0;
    while (lp->n_all > 0) {
        struct task *t = lp->all[--lp->n_all];
        lua_resetthread(t->co);
        *(struct task **)lua_getextraspace(t->co) = NULL;
        luaL_unref(lp->L, LUA_REGISTRYINDEX, t->ref);
        free(t);
    }
    /* A transfer's userdata lived on its task's stack only: now garbage, and its __gc detaches
     * it (loop_detach clears its waiter, which pointed at a freed task until then). */
    lua_gc(lp->L, LUA_GCCOLLECT);
}

void loop_drive(struct loop *lp, lua_State *L, int (*cond)(void *), void *arg, const void *scope)
{
    while (!cond(arg)) {
        limits_check(L);
        if (scope) {
            run_ready(lp, L, scope, 0);
            if (cond(arg))
                break;
        }
        poll_once(lp, fire_timers(lp, now_monotonic()));
        fire_timers(lp, now_monotonic());
        limits_poll(lp->lim);
    }
}

struct task *loop_waiter(lua_State *L)
{
    return loop_can_yield(L) ? task_of(L) : NULL;
}

int loop_wait(lua_State *L, struct loop *lp, int (*cond)(void *), void *arg, const void *scope,
              lua_KFunction k, lua_KContext ctx)
{
    struct task *t = loop_waiter(L);
    if (t) {
        t->waiting = 1;
        return lua_yieldk(L, 0, ctx, k);
    }
    loop_drive(lp, L, cond, arg, scope);
    return k(L, LUA_OK, ctx);
}
