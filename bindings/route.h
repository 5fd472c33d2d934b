/* The route table: Lua name -> method, path template, path parameters, body schema and
 * options (query parameters). Internal to bindings/ and its tests; the host sees bindings.h. */
#ifndef ECAP_ROUTE_H
#define ECAP_ROUTE_H

#include <lua.h>

#include "net/call.h"
#include "schema.h"

#define ROUTE_MAX_PARAMS 4
#define ROUTE_PATH_MAX 256

/* Cross-argument rule of a route: runs last, after the ids, the body and the options passed
 * their schemas, on the validated copies (stack indices body and opts, 0 when absent: an
 * omitted options table still runs it). Raises with schema_fail. For guards that weigh the
 * body against the options (cost_avoidance.bulk_update: empty filters need a confirm). */
typedef void (*route_rule)(lua_State *L, int body, int opts, struct vctx *v);

struct route {
    const char *name;                      /* Lua name "<table>.<function>" */
    const char *method;                    /* built-in route (an override replaces both) */
    const char *path;                      /* "/api/v3/meter/{meterId}/..." */
    const char *params[ROUTE_MAX_PARAMS];  /* path parameters = the leading Lua arguments */
    const struct schema *body;             /* next argument, or NULL for no body */
    const struct schema *options;          /* optional last argument, or NULL */
    route_rule rule;                       /* or NULL */
};

/* Index of the route named name, or -1. */
int route_find(const char *name);

/* Current method and path template of route i (an override, or the built-in one). */
const char *route_method(int i);
const char *route_path(int i);

/* Checks the arguments of a call of route i (at stack indices 1..top), pushes what the request
 * needs (path string, body copy, query table) and fills c to point at them. Raises a
 * validation error on any violation, before anything is sent. */
void route_prepare(lua_State *L, int i, struct call *c);

#endif
