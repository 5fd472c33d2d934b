/* The `ecap` table: ecap.request, ecap.config, ecap.sleep, ecap.parallel, the bindings, and
 * the Lua-written helpers (host/run/lua/ecap.lua: pages, filter, cost_avoidance.wait). */
#ifndef ECAP_ECAP_H
#define ECAP_ECAP_H

#include <lua.h>

struct host;

/* Pushes the (not yet frozen) ecap table of the run h (its loop in place; h outlives L). */
int ecap_open(lua_State *L, struct host *h);

#endif
