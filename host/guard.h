/* The sandbox's limits: a counting allocator (--max-memory), a count hook that stops the
 * script at the deadline (--timeout) or on SIGINT/SIGTERM and re-arms itself so pcall cannot
 * swallow the stop, and a watchdog thread for the long C call that never reaches the hook. */
#ifndef ECAP_GUARD_H
#define ECAP_GUARD_H

#include <signal.h>
#include <stddef.h>
#include <lua.h>

enum stop_reason { STOP_NONE = 0, STOP_TIME, STOP_MEMORY, STOP_SIGINT, STOP_SIGTERM };

struct limits {
    size_t used, limit;      /* bytes in use by the state; limit 0 = none */
    size_t peak;
    double deadline;         /* monotonic seconds; 0 = none */
    double timeout_s;
    _Atomic int stop;        /* enum stop_reason; set by the hook, the allocator, a signal
                              * handler and the watchdog thread (lock-free: signal-safe) */
};

void limits_init(struct limits *lim, size_t max_memory, double timeout_s);

/* The lua_Alloc to pass to lua_newstate with lim as ud. */
void *limits_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Installs the count hook on L (threads created later inherit it). */
void limits_hook(lua_State *L);

/* Raises the stop error in L if a stop is pending (used by C code that waits: the loop). */
void limits_check(lua_State *L);

/* The message and exit code of a stop reason. */
const char *limits_message(const struct limits *lim);
int limits_exit_code(enum stop_reason r);

/* Signals and the watchdog: SIGINT/SIGTERM set lim->stop; the watchdog ends the process with
 * the limit's exit code when the script has not stopped within a grace period after the
 * deadline or the signal. watchdog_stop before tearing down. */
int watchdog_start(struct limits *lim);
void watchdog_stop(void);

double now_monotonic(void);

#endif
