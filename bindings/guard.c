/* The one guard of destructive operations, and the one way a bound call leaves.
 *
 * A route row names its guard (route.h): what makes a call destructive (judged on what would
 * be sent), the field to blame and the word that confirms it. Two parties must agree before a
 * destructive call is sent:
 *   - the script's author, with confirm = "<word>" in the options table (ecap.request has no
 *     options table: its raw calls skip this step);
 *   - the person running it, with --allow-destructive (config allow_destructive = true, a
 *     scheduled job's allow_destructive = true), or by typing yes at a prompt on the terminal.
 * --allow-destructive stands for both (it always has). Under --dry-run nothing is sent, so no
 * consent is needed: the call is previewed instead.
 *
 * Previews and prompts need reads and a wait for the terminal: the run's preview hook (Lua,
 * host/run/lua/ecap.lua) does them, called with lua_callk so it may yield; the call is sent
 * from the continuation. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lib/errors.h"
#include "net/loop.h"
#include "net/options.h"
#include "route.h"
#include "schema.h"

static const char hook_key = 'h'; /* registry[&hook_key]: the run's preview hook */

void bindings_set_preview_hook(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &hook_key);
}

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

static int run_consents(const struct consent *consent)
{
    return consent && consent->allow_destructive;
}

const char *guard_binding(lua_State *L, const struct consent *consent, const struct route *r,
                          int body, int query, int opts)
{
    const struct route_guard *g = r->guard;
    int top = lua_gettop(L);
    const char *what = g->check(L, body, query); /* pushes the offending value when destructive */
    if (what && !run_consents(consent) && !confirmed(L, opts, g->confirm)) {
        struct vctx v = {.operation = r->name, .top = "body"};
        schema_fail(L, &v, g->field, "guard", top + 1,
                    "%s: pass confirm = \"%s\" in the options table, or run with --allow-destructive",
                    what, g->confirm);
    }
    lua_settop(L, top);
    return what && !run_consents(consent) ? what : NULL;
}

const char *guard_request(lua_State *L, const struct consent *consent, const struct route *r,
                          int body, int query)
{
    int top = lua_gettop(L);
    const char *what = r->guard->check(L, body, query);
    lua_settop(L, top);
    return what && !run_consents(consent) ? what : NULL;
}

/* What a send waiting for the hook keeps: a userdata on the caller's stack, below the hook's
 * result, so the strings and stack indices of c stay valid in the continuation. */
struct pending {
    struct call c;
    struct loop *loop;
};

/* Raises the refusal of a destructive call the run has not consented to (no flag, no terminal
 * to ask on). The blamed field is the guard's. */
static void refuse(lua_State *L, const struct route *r, const char *operation, const char *what)
{
    struct vctx v = {.operation = operation, .top = "body"};
    schema_fail(L, &v, r->guard->field, "consent", 0,
                "%s: the run has not consented: run with --allow-destructive (config "
                "allow_destructive = true), or from a terminal to answer yes at the prompt", what);
}

/* Continuation: the hook returned (a preview text, or true for a yes); sends the call. */
static int send_k(lua_State *L, int status, lua_KContext at)
{
    struct pending *p = lua_touserdata(L, (int)at);
    (void)status;
    if (lua_type(L, -1) == LUA_TSTRING)
        p->c.preview = lua_tostring(L, -1); /* stays on the stack, under nothing we pop */
    return ecap_call(L, p->loop, &p->c);
}

int guard_send(lua_State *L, struct loop *lp, const struct route *r, const char *tmpl,
               const char *what, const struct call *c)
{
    int dry = loop_options(lp)->dry_run, at;
    int preview = dry && r && r->preview;
    struct pending *p;
    const char *operation = c->operation ? c->operation : "ecap.request";

    if (dry)
        what = NULL; /* never sent: nothing to consent to */
    if (!what && !preview)
        return ecap_call(L, lp, c);
    if (what && !(isatty(0) && isatty(2)))
        refuse(L, r, operation, what);
    p = lua_newuserdatauv(L, sizeof *p, 0);
    p->c = *c;
    p->loop = lp;
    at = lua_gettop(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &hook_key) != LUA_TFUNCTION) { /* no hook: no preview */
        if (what)
            refuse(L, r, operation, what);
        return send_k(L, LUA_OK, at);
    }
    /* hook(mode, operation, route, method, path, template, body, query, what) */
    lua_pushstring(L, what ? "ask" : "preview");
    lua_pushstring(L, operation);
    lua_pushstring(L, r->name);
    lua_pushstring(L, c->method);
    lua_pushstring(L, c->path);
    lua_pushstring(L, tmpl);
    if (c->body)
        lua_pushvalue(L, c->body);
    else
        lua_pushnil(L);
    if (c->query)
        lua_pushvalue(L, c->query);
    else
        lua_pushnil(L);
    if (what)
        lua_pushstring(L, what);
    else
        lua_pushnil(L);
    lua_callk(L, 9, 1, at, send_k);
    return send_k(L, LUA_OK, at);
}
