/* The one event loop of a run: host-managed coroutines ("tasks"), HTTP transfers on one curl
 * multi handle, and timers.
 *
 * Every script's main chunk runs as a task; so does every item of ecap.parallel. A call that
 * must wait (a transfer, a sleep, a join) yields its task back to the loop, which resumes it
 * when the wait is over. Where the caller cannot yield (not a task, or inside a metamethod,
 * a sort comparator, a gsub callback), the call drives the loop itself until its own wait is
 * over (loop_drive); other tasks that become ready meanwhile wait for the outer loop, except
 * those in the drive's scope (children of a parallel call made there). Never call back into
 * Lua from a curl callback: completions only mark transfers done and wake tasks. */
#ifndef ECAP_LOOP_H
#define ECAP_LOOP_H

#include <stddef.h>
#include <lua.h>

struct limits;
struct loop;
struct task;
struct xfer;

typedef void (*task_done_fn)(struct loop *lp, struct task *t, int status, void *ud);

struct task {
    lua_State *co;
    int ref;                  /* registry reference that keeps the thread alive */
    int waiting;              /* yielded to the loop on purpose: set only by loop_wait */
    int ready, finished;
    int status;               /* lua_resume status once finished */
    int nargs;                /* arguments on co's stack for the first resume */
    struct task *next_ready;
    struct task *parent;      /* the task that spawned it (ecap.parallel), or NULL */
    const void *scope;        /* the parallel call that spawned it, or NULL */
    task_done_fn done;
    void *ud;
    long long tag;            /* the spawner's own number for it (ecap.parallel: item index) */
};

struct net_options;

/* A loop for the state L: opts and lim must outlive it. */
struct loop *loop_new(lua_State *L, const struct net_options *opts, struct limits *lim, char *err,
                      size_t errlen);
/* After lua_close: transfers still attached were detached by their finalizers. */
void loop_free(struct loop *lp);
/* The state's main thread: a scratch stack for the loop's callbacks (never runs scripts). */
lua_State *loop_main(struct loop *lp);

/* The task running on thread L, or NULL when L is not a host-managed coroutine. */
struct task *task_of(lua_State *L);
/* True when a call on L may yield its task to the loop. */
int loop_can_yield(lua_State *L);

/* Creates a task from the function and nargs arguments on top of L (popped) in a new thread.
 * It first runs when the loop next runs ready tasks. done is called when it finishes, with
 * its results (status LUA_OK) or its error value (other status) on t->co's stack. */
struct task *task_spawn(struct loop *lp, lua_State *L, int nargs, struct task *parent,
                        const void *scope, task_done_fn done, void *ud);
void task_wake(struct loop *lp, struct task *t);

/* Runs the loop until *finished is set (by a task's done callback) or the run is stopping
 * (limits). Returns 0, or -1 when stopped. */
int loop_run(struct loop *lp, const int *finished);

/* Drops every live task (an interrupted statement of the REPL and the items it spawned): their
 * threads are reset (pending to-be-closed variables closed), their timers and wake-ups gone,
 * and a full collection finalizes their transfers, which detaches each from the multi handle.
 * Call with no task running. */
void loop_cancel(struct loop *lp);

/* Drives the loop from inside a call on L until cond(arg) is true. Raises the stop error in
 * L when the run is stopping. scope: see above (NULL = resume no task). */
void loop_drive(struct loop *lp, lua_State *L, int (*cond)(void *), void *arg, const void *scope);

/* The task that a wait on L will yield (loop_wait), or NULL when the wait will drive the loop
 * instead: register it where the wake-up must go (a transfer's waiter, a timer, an owner). */
struct task *loop_waiter(lua_State *L);

/* The one wait of a call on L: if L can yield, marks its task waiting and yields with the
 * continuation k (the task is woken by whatever loop_waiter(L) was registered with); else
 * drives the loop until cond(arg) (scope as for loop_drive) and calls k itself. Use as
 * `return loop_wait(...);` from a lua_CFunction. */
int loop_wait(lua_State *L, struct loop *lp, int (*cond)(void *), void *arg, const void *scope,
              lua_KFunction k, lua_KContext ctx);

/* A wait for input on fd (the consent prompt's terminal): while watched, the loop's sleep
 * also ends when fd is readable, and wakes t (NULL when a drive waits with its own cond).
 * One watch at a time; fd -1 ends it. loop_watching: whether one is on (the terminal is in use:
 * progress lines stay off it). */
void loop_watch_fd(struct loop *lp, int fd, struct task *t);
int loop_watching(const struct loop *lp);
int loop_fd_readable(int fd);

/* Timers: wake task t at monotonic time `at`. */
int loop_timer(struct loop *lp, double at, struct task *t);

/* ---- transfers --------------------------------------------------------------------------- */

/* Queues x (prepared by http.c) on the multi handle, honouring --max-in-flight and --rate. */
void loop_submit(struct loop *lp, struct xfer *x);
/* Detaches x wherever it is (queued or in flight); safe on a finished or never-submitted x. */
void loop_detach(struct loop *lp, struct xfer *x);
/* Called by the loop when x finishes; wakes x->waiter. */
void loop_xfer_done(struct loop *lp, struct xfer *x);

/* A fresh or reset easy handle (CURL *), and its return after use. */
void *loop_easy_get(struct loop *lp);
void loop_easy_put(struct loop *lp, void *easy);
const struct net_options *loop_options(struct loop *lp);
struct ledger *loop_ledger(struct loop *lp); /* net/ledger.h */
struct limits *loop_limits(struct loop *lp);

#endif
