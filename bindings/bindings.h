/* The EnergyCAP operations bound as Lua functions: routes and body rules as data (see
 * bindings/routes.c), one validator (bindings/validate.c), one call path (host/net/call.h). */
#ifndef ECAP_BINDINGS_H
#define ECAP_BINDINGS_H

#include <stddef.h>
#include <lua.h>

struct config;

/* Adds the binding sub-tables (meter_groups, account_meters, cost_avoidance, meters) and
 * their functions to the table at ecap_idx. */
void bindings_register(lua_State *L, int ecap_idx);

/* Applies a route override from the config file: name is the Lua name
 * ("meter_groups.refresh"), spec "METHOD /api/...{param}...". Returns 0, or -1 with a
 * message in err (unknown name, bad method, path not under /api/, placeholder names that
 * differ from the seed's path parameters). Process-wide: call before any state is made. */
int bindings_route_override(const char *name, const char *spec, char *err, size_t errlen);

/* Restores the built-in routes (tests). */
void bindings_routes_reset(void);

#endif
