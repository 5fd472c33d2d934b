/* The `ecap` table: ecap.request, ecap.config, ecap.sleep, ecap.parallel, the bindings, and
 * the Lua-written helpers (host/run/lua/ecap.lua: pages, filter, cost_avoidance.wait). */
#ifndef ECAP_ECAP_H
#define ECAP_ECAP_H

#include <lua.h>

/* Pushes the (not yet frozen) ecap table. Needs host_set and the loop in place. */
int ecap_open(lua_State *L);

#endif
