/* ecap.request / config / sleep / parallel. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "bindings/bindings.h"
#include "net/call.h"
#include "ecap.h"
#include "lib/embedded.h"
#include "lib/errors.h"
#include "lib/inspect.h"
#include "lib/log.h"
#include "host.h"
#include "guard.h"
#include "net/loop.h"
#include "sandbox.h"

/* ---- ecap.request(method, path [, {query=, body=, headers=}]) ----------------------------- */

/* Upvalue 1 of every function of the ecap table: the run's host record. */
static struct host *host_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int l_request(lua_State *L)
{
    static const char *const known[] = {"query", "body", "headers", NULL};
    struct host *h = host_of(L);
    struct call c = {0};
    c.method = err_checkstring(L, 1);
    c.path = err_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        err_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            int ok = 0;
            lua_pop(L, 1);
            for (int i = 0; known[i] && lua_type(L, -1) == LUA_TSTRING; i++)
                ok |= strcmp(lua_tostring(L, -1), known[i]) == 0;
            if (!ok)
                err_raise(L, "validation", "ecap.request: unknown option %s (known: query, body, headers)",
                          luaL_tolstring(L, -1, NULL));
        }
        lua_settop(L, 3);
        if (lua_getfield(L, 3, "query") != LUA_TNIL) {
            if (!lua_istable(L, -1))
                err_raise(L, "validation", "ecap.request: opts.query must be a table");
            c.query = lua_gettop(L);
        }
        if (lua_getfield(L, 3, "body") != LUA_TNIL)
            c.body = lua_gettop(L);
        if (lua_getfield(L, 3, "headers") != LUA_TNIL) {
            if (!lua_istable(L, -1))
                err_raise(L, "validation", "ecap.request: opts.headers must be a table");
            c.headers = lua_gettop(L);
        }
    }
    return bindings_request(L, &h->bindings, &c); /* the guard, then ecap_call: may yield */
}

/* ---- ecap.config() ------------------------------------------------------------------------ */

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_dirs(lua_State *L, const char *k, char *const *dirs, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, dirs[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, k);
}

/* Non-secret settings only: the key never enters the state. */
static int l_config(lua_State *L)
{
    const struct run_options *c = host_of(L)->opts;
    lua_createtable(L, 0, 16);
    set_str(L, "base_url", c->net.base_url);
    set_str(L, "environment", c->environment);
    set_str(L, "config_file", c->config_path);
    set_str(L, "version", ECAP_VERSION);
    lua_pushboolean(L, c->simulator);
    lua_setfield(L, -2, "simulator");
    lua_pushboolean(L, c->quiet);
    lua_setfield(L, -2, "quiet");
    lua_pushboolean(L, c->consent.allow_destructive);
    lua_setfield(L, -2, "allow_destructive");
    lua_pushboolean(L, c->net.dry_run);
    lua_setfield(L, -2, "dry_run");
    set_str(L, "journal", c->net.journal_path);
    lua_pushboolean(L, c->net.api_key != NULL);
    lua_setfield(L, -2, "has_api_key");
    lua_pushnumber(L, c->timeout_s);
    lua_setfield(L, -2, "timeout");
    lua_pushinteger(L, (lua_Integer)(c->max_memory >> 20));
    lua_setfield(L, -2, "max_memory_mb");
    lua_pushnumber(L, (double)c->net.http_timeout_ms / 1000.0);
    lua_setfield(L, -2, "http_timeout");
    lua_pushinteger(L, c->net.max_in_flight);
    lua_setfield(L, -2, "max_in_flight");
    lua_pushnumber(L, c->net.rate);
    lua_setfield(L, -2, "rate");
    set_dirs(L, "allow_read", c->fs.read_dirs, c->fs.n_read_dirs);
    set_dirs(L, "allow_write", c->fs.write_dirs, c->fs.n_write_dirs);
    lua_createtable(L, 0, bindings_count());
    for (int i = 0; i < bindings_count(); i++) {
        struct route_info ri;
        bindings_route_info(c->routes, i, &ri);
        lua_pushfstring(L, "%s %s", ri.method, ri.path);
        lua_setfield(L, -2, ri.name);
    }
    lua_setfield(L, -2, "routes");
    return 1;
}

/* ---- ecap.sleep(seconds) ------------------------------------------------------------------ */

static int sleep_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)L, (void)status, (void)ctx;
    return 0;
}

static int time_reached(void *arg)
{
    return now_monotonic() >= *(double *)arg;
}

static int l_sleep(lua_State *L)
{
    lua_Number s = err_checknumber(L, 1);
    struct loop *lp = host_of(L)->loop;
    struct task *t;
    double at;
    if (!(s >= 0) || s > 86400.0 * 366)
        return err_argerror(L, 1, "seconds must be between 0 and a year");
    at = now_monotonic() + s;
    t = loop_waiter(L);
    if (t && loop_timer(lp, at, t))
        return luaL_error(L, "out of memory");
    return loop_wait(L, lp, time_reached, &at, NULL, sleep_k, 0);
}

/* ---- ecap.parallel(items, fn [, {concurrency=, stop_on_error=}]) -------------------------- */

enum { PAR_ITEMS = 1, PAR_FN, PAR_RESULTS, PAR_ERRORS, PAR_CALLER, PAR_NUV = PAR_CALLER };

struct par {
    lua_Integer n, next, running, finished;
    int concurrency, stop_on_error, failed;
    int ref;              /* registry ref to the par userdata while children run */
    struct task *owner;   /* the yielded caller to wake, or NULL when it drives the loop */
    struct task *parent;  /* the caller's task (for the scope of nested drives) */
    int progress;         /* draw a progress line on the terminal */
    double started, drawn;
    lua_Integer errors;
};

static void progress(struct loop *lp, struct par *p, int final)
{
    double t = now_monotonic(), el = t - p->started, rate;
    if (!p->progress || loop_watching(lp) /* a prompt holds the terminal */
        || (!final && t - p->drawn < 0.1))
        return;
    p->drawn = t;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    rate = el > 0 ? (double)p->finished / el : 0;
    fprintf(stderr, "\r\033[Kparallel: %lld/%lld  %.1f/s  errors %lld  ETA %.0fs", (long long)p->finished,
            (long long)p->n, rate, (long long)p->errors,
            rate > 0 ? (double)(p->n - p->finished) / rate : 0.0);
    fflush(stderr);
}

static void child_done(struct loop *lp, struct task *t, int status, void *ud);

/* Pushes the par userdata on S. */
static struct par *push_par(lua_State *S, struct par *p)
{
    lua_rawgeti(S, LUA_REGISTRYINDEX, p->ref);
    return p;
}

static void spawn_next(struct loop *lp, lua_State *S, struct par *p)
{
    while (!p->failed && p->running < p->concurrency && p->next <= p->n) {
        lua_Integer i = p->next++;
        struct task *t;
        push_par(S, p);
        lua_getiuservalue(S, -1, PAR_FN);
        lua_getiuservalue(S, -2, PAR_ITEMS);
        lua_rawgeti(S, -1, i);
        lua_replace(S, -2);
        lua_pushinteger(S, i);
        t = task_spawn(lp, S, 2, p->parent, p, child_done, p);
        t->tag = i;
        lua_pop(S, 1);
        p->running++;
    }
}

/* [-0, +(0|1)] Pushes the script's "file:line" of the ecap.parallel call (its caller's thread
 * is still inside it); returns 0 and pushes nothing when there is none. */
static int push_call_where(lua_State *S, struct par *p)
{
    int found;
    push_par(S, p);
    lua_getiuservalue(S, -1, PAR_CALLER);
    found = err_push_where(S, lua_tothread(S, -1));
    if (found)
        lua_replace(S, -3);
    lua_pop(S, found ? 1 : 2);
    return found;
}

/* The error table on top of S, made on the loop's stack or raised by an item whose function
 * is the host's own (no script line of its own), points at the ecap.parallel call. */
static void default_where(lua_State *S, struct par *p)
{
    if (lua_getfield(S, -1, "where") == LUA_TNIL && push_call_where(S, p))
        lua_setfield(S, -3, "where");
    lua_pop(S, 1);
}

/* A plain Lua error (a string, say) on top of S, raised by item co, becomes an error table
 * like the others, at the item's line; the "file:line: " Lua put before the text is not
 * repeated when it is that line. */
static void script_error(lua_State *S, struct par *p, lua_State *co)
{
    const char *msg = luaL_tolstring(S, -1, NULL);
    size_t n;
    if (err_push_where(S, co) || push_call_where(S, p)) {
        const char *where = lua_tolstring(S, -1, &n);
        if (strncmp(msg, where, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
            msg += n + 2;
    } else {
        lua_pushnil(S);
    }
    err_push(S, "script", "%s", msg);
    lua_insert(S, -2);
    lua_setfield(S, -2, "where");
    lua_replace(S, -3);
    lua_pop(S, 1);
}

/* Unstarted items of a stopped parallel get a "cancelled" error. */
static void cancel_rest(lua_State *S, struct par *p)
{
    push_par(S, p);
    lua_getiuservalue(S, -1, PAR_ERRORS);
    for (; p->next <= p->n; p->next++) {
        err_push(S, "cancelled", "not started: an earlier item failed (stop_on_error)");
        default_where(S, p);
        lua_rawseti(S, -2, p->next);
        p->finished++;
    }
    lua_pop(S, 2);
}

static void child_done(struct loop *lp, struct task *t, int status, void *ud)
{
    struct par *p = ud;
    lua_State *S = loop_main(lp);
    int top = lua_gettop(S);
    push_par(S, p);
    lua_getiuservalue(S, -1, status == LUA_OK ? PAR_RESULTS : PAR_ERRORS);
    if (status == LUA_OK) {
        if (lua_gettop(t->co) > 0) {
            lua_settop(t->co, 1);
            lua_xmove(t->co, S, 1);
        } else {
            lua_pushnil(S);
        }
    } else {
        lua_xmove(t->co, S, 1);
        /* a table the script raised is kept as it is */
        if (lua_type(S, -1) != LUA_TTABLE)
            script_error(S, p, t->co);
        else if (err_is(S, -1))
            default_where(S, p);
        p->errors++;
        if (p->stop_on_error)
            p->failed = 1;
    }
    lua_rawseti(S, -2, t->tag);
    lua_settop(S, top);
    p->running--;
    p->finished++;
    progress(lp, p, 0);
    if (p->failed && p->running == 0)
        cancel_rest(S, p);
    else
        spawn_next(lp, S, p);
    if (p->finished == p->n && p->owner)
        task_wake(lp, p->owner);
}

static int par_finished(void *arg)
{
    struct par *p = arg;
    return p->finished == p->n;
}

static int par_results(lua_State *L, int idx)
{
    struct par *p = lua_touserdata(L, idx);
    progress(host_of(L)->loop, p, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, p->ref);
    p->ref = LUA_NOREF;
    lua_getiuservalue(L, idx, PAR_RESULTS);
    lua_getiuservalue(L, idx, PAR_ERRORS);
    return 2;
}

static int par_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return par_results(L, (int)ctx);
}

static int l_parallel(lua_State *L)
{
    struct host *h = host_of(L);
    struct loop *lp = h->loop;
    struct par *p;
    lua_Integer conc = 8;
    int stop_on_error = 0, ud;
    err_checktype(L, 1, LUA_TTABLE);
    err_checktype(L, 2, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 3)) {
        err_checktype(L, 3, LUA_TTABLE);
        if (lua_getfield(L, 3, "concurrency") != LUA_TNIL) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > NET_MAX_IN_FLIGHT_MAX)
                err_raise(L, "validation", "ecap.parallel: concurrency must be an integer 1..%d",
                          NET_MAX_IN_FLIGHT_MAX);
            conc = lua_tointeger(L, -1);
        }
        if (lua_getfield(L, 3, "stop_on_error") != LUA_TNIL) {
            if (!lua_isboolean(L, -1))
                err_raise(L, "validation", "ecap.parallel: stop_on_error must be a boolean");
            stop_on_error = lua_toboolean(L, -1);
        }
        lua_settop(L, 3);
    }
    p = lua_newuserdatauv(L, sizeof *p, PAR_NUV);
    memset(p, 0, sizeof *p);
    ud = lua_gettop(L);
    if (luaL_newmetatable(L, "ecap.parallel")) {
        lua_pushliteral(L, "parallel");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, ud);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, ud, PAR_ITEMS);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, ud, PAR_FN);
    lua_newtable(L);
    lua_setiuservalue(L, ud, PAR_RESULTS);
    lua_newtable(L);
    lua_setiuservalue(L, ud, PAR_ERRORS);
    lua_pushthread(L);
    lua_setiuservalue(L, ud, PAR_CALLER);
    p->n = (lua_Integer)lua_rawlen(L, 1);
    p->next = 1;
    p->concurrency = (int)conc;
    p->stop_on_error = stop_on_error;
    p->parent = task_of(L);
    p->started = now_monotonic();
    p->progress = !h->opts->quiet && isatty(2) && !log_is_json() && p->n > 1;
    lua_pushvalue(L, ud);
    p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (p->n == 0)
        return par_results(L, ud);
    spawn_next(lp, loop_main(lp), p);
    p->owner = loop_waiter(L);
    return loop_wait(L, lp, par_finished, p, p, par_k, (lua_KContext)ud);
}

/* ---- primitives for the Lua-written helpers (not reachable by scripts) --------------------- */

/* error(kind, message [, fields]) -> error table */
static int p_error(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1), *msg = luaL_checkstring(L, 2);
    err_push(L, kind, "%s", msg);
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    return 1;
}

static int p_now(lua_State *L)
{
    lua_pushnumber(L, now_monotonic());
    return 1;
}

static int p_is_null(lua_State *L)
{
    lua_pushboolean(L, lua_type(L, 1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, 1) == NULL);
    return 1;
}

/* progress(text) draws a one-line status on a terminal stderr; progress() clears it. Nothing
 * when stderr is not a terminal, with --quiet or with --log-format json. */
static int p_progress(lua_State *L)
{
    if (host_of(L)->opts->quiet || !isatty(2) || log_is_json() || loop_watching(host_of(L)->loop))
        return 0;
    if (lua_isnoneornil(L, 1))
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r\033[K%s", luaL_checkstring(L, 1));
    fflush(stderr);
    return 0;
}

/* ask(text): writes text to the terminal (stderr) and waits on the loop for a line on stdin:
 * other tasks go on meanwhile, --timeout and Ctrl-C end the wait. Returns the line without its
 * end, or nil at the end of input. Only the consent prompt uses it (after checking both are
 * terminals). */
static int stdin_readable(void *arg)
{
    (void)arg;
    return loop_fd_readable(0);
}

static int ask_k(lua_State *L, int status, lua_KContext ctx)
{
    char buf[256];
    size_t len = 0;
    (void)status;
    (void)ctx;
    loop_watch_fd(host_of(L)->loop, -1, NULL);
    for (;;) { /* a terminal hands over whole lines: these reads do not block */
        char c;
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 && len == 0) {
            lua_pushnil(L); /* end of input: no answer */
            return 1;
        }
        if (n <= 0 || c == '\n')
            break;
        if (c != '\r' && len < sizeof buf)
            buf[len++] = c;
        if (!loop_fd_readable(0))
            break; /* a line ended by Ctrl-D, without its newline */
    }
    lua_pushlstring(L, buf, len);
    return 1;
}

static int p_ask(lua_State *L)
{
    struct loop *lp = host_of(L)->loop;
    fputs("\r\033[K", stderr); /* over a progress line */
    fputs(luaL_checkstring(L, 1), stderr);
    fflush(stderr);
    loop_watch_fd(lp, 0, loop_waiter(L));
    return loop_wait(L, lp, stdin_readable, NULL, NULL, ask_k, 0);
}

static const luaL_Reg private_funcs[] = {
    {"progress", p_progress},
    {"ask", p_ask},
    {"error", p_error},
    {"now", p_now},
    {"is_null", p_is_null},
    {NULL, NULL},
};

/* ---- the table ------------------------------------------------------------------------------ */

/* ecap.now(): monotonic seconds, for measuring durations (os.clock is CPU time). */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, now_monotonic());
    return 1;
}

/* ecap.inspect(v [, {depth=, max_items=, indent=}]): the readable printer (lib/inspect.h);
 * the host's read-only proxies (ecap, json, ...) show what they stand for. */
static int l_inspect(lua_State *L)
{
    struct inspect_opts o;
    inspect_defaults(&o);
    inspect_read_opts(L, 2, &o, "ecap.inspect");
    o.unwrap = sandbox_unproxy;
    lua_settop(L, 1);
    inspect_push(L, 1, &o);
    return 1;
}

static const luaL_Reg ecap_funcs[] = {
    {"inspect", l_inspect},
    {"request", l_request},
    {"now", l_now},
    {"config", l_config},
    {"sleep", l_sleep},
    {"parallel", l_parallel},
    {NULL, NULL},
};

int ecap_open(lua_State *L, struct host *h)
{
    const struct embedded_file *f = embedded_find(embedded_run, "run/lua/ecap.lua");
    luaL_newlibtable(L, ecap_funcs);
    lua_pushlightuserdata(L, h);
    luaL_setfuncs(L, ecap_funcs, 1);
    bindings_register(L, lua_gettop(L), &h->bindings);
    /* Helpers written in Lua extend the table: loaded as trusted host code. */
    if (!f || luaL_loadbufferx(L, f->data, f->len, "=[ecap]", "t") != LUA_OK)
        return luaL_error(L, "ecaphost: cannot load the embedded ecap helpers: %s",
                          f ? lua_tostring(L, -1) : "missing");
    lua_pushvalue(L, -2);
    luaL_newlibtable(L, private_funcs);
    lua_pushlightuserdata(L, h);
    luaL_setfuncs(L, private_funcs, 1);
    lua_call(L, 2, 1);
    bindings_set_preview_hook(L, -1); /* the helpers return it */
    lua_pop(L, 1);
    return 1;
}
