/* The sandbox's time and signal guards: a count hook that stops the script at the deadline
 * (--timeout) or on SIGINT/SIGTERM and re-arms itself so pcall cannot swallow the stop, and a
 * watchdog thread for the long C call that never reaches the hook. The budget they enforce
 * (struct limits) is lib/limits.h. */
#ifndef ECAP_GUARD_H
#define ECAP_GUARD_H

#include <lua.h>

#include "lib/limits.h"

/* Installs the count hook on L (threads created later inherit it). */
void limits_hook(lua_State *L);

/* The exit code of a stop reason. */
int limits_exit_code(enum stop_reason r);

/* Signals and the watchdog: SIGINT/SIGTERM set lim->stop; the watchdog ends the process with
 * the limit's exit code when the script has not stopped within a grace period after the
 * deadline or the signal. watchdog_stop before tearing down. */
int watchdog_start(struct limits *lim);
void watchdog_stop(void);

#endif
