/* The budget of one run, shared by every layer that spends on a script's behalf: the bytes in
 * use (the Lua allocator and the host's per-request buffers count against one --max-memory),
 * the deadline, and the stop flag that the allocator, the count hook, signal handlers and the
 * watchdog set. The hook, the watchdog and the signals live in run/guard.c. */
#ifndef ECAP_LIMITS_H
#define ECAP_LIMITS_H

#include <stddef.h>
#include <lua.h>

enum stop_reason { STOP_NONE = 0, STOP_TIME, STOP_MEMORY, STOP_SIGINT, STOP_SIGTERM };

struct limits {
    size_t used, limit;      /* bytes in use by the state; limit 0 = none */
    double deadline;         /* monotonic seconds; 0 = none */
    double timeout_s;
    _Atomic int stop;        /* enum stop_reason; set by the hook, the allocator, a signal
                              * handler and the watchdog thread (lock-free: signal-safe) */
    _Atomic int reopen;      /* SIGHUP: reopen the files the run appends to (logrotate) */
};

void limits_init(struct limits *lim, size_t max_memory, double timeout_s);

/* The lua_Alloc to pass to lua_newstate with lim as ud. */
void *limits_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* The limits of the state L (its allocator's ud). */
struct limits *limits_of(lua_State *L);

/* Sets the stop flag when the deadline has passed; returns the stop reason. */
int limits_poll(struct limits *lim);

/* Raises the stop error in L if a stop is pending (used by C code that waits: the loop). */
void limits_check(lua_State *L);

/* Charges n more bytes (n may be "negative" via limits_release) made by the host for the
 * script outside the Lua allocator. Returns 0, or -1 (nothing charged) past the limit. */
int limits_charge(struct limits *lim, size_t n);
void limits_release(struct limits *lim, size_t n);

/* The message of a stop reason. */
const char *limits_message(const struct limits *lim);

double now_monotonic(void);

#endif
