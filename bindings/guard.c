/* The one guard of destructive operations. A route row names its guard (route.h): what makes
 * a call destructive (judged on what would be sent), the field to blame and the word that
 * confirms it. Consent comes from the script's options (confirm = "<word>") or from the run
 * (--allow-destructive); ecap.request has no confirm option, so a destructive raw call needs
 * the run's consent or the binding. */
#include <string.h>

#include <lauxlib.h>

#include "route.h"
#include "schema.h"

/* Whether the options copy at opts holds confirm = word. */
static int confirmed(lua_State *L, int opts, const char *word)
{
    int ok;
    if (!opts)
        return 0;
    schema_get(L, opts, "confirm");
    ok = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), word) == 0;
    lua_pop(L, 1);
    return ok;
}

void guard_binding(lua_State *L, const struct consent *consent, const struct route *r, int body,
                   int query, int opts)
{
    const struct route_guard *g = r->guard;
    int top = lua_gettop(L);
    const char *what = g->check(L, body, query); /* pushes the offending value when destructive */
    if (what && !(consent && consent->allow_destructive) && !confirmed(L, opts, g->confirm)) {
        struct vctx v = {.operation = r->name, .top = "body"};
        schema_fail(L, &v, g->field, "guard", top + 1,
                    "%s: pass confirm = \"%s\" in the options table, or run with --allow-destructive",
                    what, g->confirm);
    }
    lua_settop(L, top);
}

void guard_request(lua_State *L, const struct consent *consent, const struct route *r, int body,
                   int query)
{
    const struct route_guard *g = r->guard;
    int top = lua_gettop(L);
    const char *what = g->check(L, body, query);
    if (what && !(consent && consent->allow_destructive)) {
        struct vctx v = {.operation = "ecap.request", .top = "body"};
        schema_fail(L, &v, g->field, "guard", top + 1,
                    "%s: ecap.request cannot confirm it; use ecap.%s with confirm = \"%s\" in its "
                    "options table, or run with --allow-destructive", what, r->name, g->confirm);
    }
    lua_settop(L, top);
}
