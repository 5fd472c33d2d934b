/* The sandbox: what a script can reach, as data (allow-lists below), and nothing else. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ecap.h"
#include "lib/errors.h"
#include "host.h"
#include "lib/json.h"
#include "lib/libs.h"
#include "lib/limits.h"
#include "lib/regfile.h"
#include "net/loop.h"
#include "sandbox.h"

static const char ENV_KEY = 'E';
static const char LOADING = 'L'; /* the value of a module being loaded, in the loaded table */

void sandbox_push_env(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
}

/* ---- allow-lists ---------------------------------------------------------------------------- */

static const char *const base_allowed[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
    "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type",
    "xpcall", "_VERSION", NULL,
};

struct lib_allow {
    const char *name;
    lua_CFunction open;
    const char *const *only; /* NULL = every function of the library */
    const char *const *except;
    const luaL_Reg *replace; /* sandbox versions of some functions */
    const luaL_Reg *guard;   /* wrappers of some functions (the real one is their upvalue) */
};

static const char *const os_only[] = {"time", "date", "clock", "difftime", NULL};
static const char *const string_except[] = {"dump", NULL};

/* A script's main chunk is itself a coroutine of the host; to the script it must look like
 * the main thread, as under plain lua: it cannot yield, and says so. */
static int sb_yield(lua_State *L)
{
    if (task_of(L))
        return luaL_error(L, "attempt to yield from outside a coroutine");
    return lua_yield(L, lua_gettop(L));
}

static int sb_isyieldable(lua_State *L)
{
    lua_State *co = lua_isnone(L, 1) ? L : lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    lua_pushboolean(L, lua_isyieldable(co) && !task_of(co));
    return 1;
}

/* Host tasks (the main chunk, parallel items) are resumed by the loop only: a script that got
 * hold of one through coroutine.running() cannot resume or close it, as under plain lua it
 * cannot resume the main thread. */
static lua_State *host_task_arg(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co != NULL, 1, "coroutine");
    return task_of(co) ? co : NULL;
}

static int sb_resume(lua_State *L)
{
    if (host_task_arg(L)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "cannot resume non-suspended coroutine");
        return 2;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int sb_close(lua_State *L)
{
    lua_State *co = host_task_arg(L);
    if (co) /* the words lua uses for the main thread: running, or normal from a coroutine */
        return luaL_error(L, "cannot close a %s coroutine", co == L ? "running" : "normal");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* In a task, running() says "main thread", as it would under plain lua. */
static int sb_running(lua_State *L)
{
    int ismain = lua_pushthread(L);
    lua_pushboolean(L, ismain || task_of(L) != NULL);
    return 2;
}

static const luaL_Reg coroutine_replace[] = {
    {"yield", sb_yield},
    {"isyieldable", sb_isyieldable},
    {"running", sb_running},
    {NULL, NULL},
};

/* Replacements that call the real function (upvalue) when the argument is not a host task. */
static const luaL_Reg coroutine_guard[] = {
    {"resume", sb_resume},
    {"close", sb_close},
    {NULL, NULL},
};

static const struct lib_allow libs_allowed[] = {
    {"string", luaopen_string, NULL, string_except, NULL, NULL},
    {"table", luaopen_table, NULL, NULL, NULL, NULL},
    {"math", luaopen_math, NULL, NULL, NULL, NULL},
    {"utf8", luaopen_utf8, NULL, NULL, NULL, NULL},
    {"coroutine", luaopen_coroutine, NULL, NULL, coroutine_replace, coroutine_guard},
    {"os", luaopen_os, os_only, NULL, NULL, NULL},
};

static int listed(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

/* ---- read-only proxies ---------------------------------------------------------------------- */

static int ro_newindex(lua_State *L)
{
    return err_raise(L, "sandbox", "%s is read-only (cannot set %s)", lua_tostring(L, lua_upvalueindex(1)),
                      luaL_tolstring(L, 2, NULL));
}

/* The host's own modules read strictly: a field that does not exist is a typo, and an error
 * naming it (with the nearest existing name) beats "attempt to index a nil value" further on.
 * The standard libraries stay lenient: portable code probes them (`if table.move then`). */
static const char *const strict_roots[] = {"ecap", "json", "log", "fs", "csv", NULL};

static int strict_reads(const char *name)
{
    for (const char *const *r = strict_roots; *r; r++) {
        size_t n = strlen(*r);
        if (strncmp(name, *r, n) == 0 && (name[n] == 0 || name[n] == '.'))
            return 1;
    }
    return 0;
}

#define NAME_MAX_SHOWN 64 /* bytes of a missing field's name shown and compared */

/* Edit distance (insertions, deletions, substitutions) of a and b, both < NAME_MAX_SHOWN. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[NAME_MAX_SHOWN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* __index of a strict proxy (upvalues: the real table, its name): the field, or an error
 * "ecap has no field 'meter' (did you mean 'meters'?)". */
static int ro_index_strict(lua_State *L)
{
    char key[NAME_MAX_SHOWN + 1] = "", best[NAME_MAX_SHOWN + 1] = "";
    size_t klen = 0, best_d = (size_t)-1;
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    if (lua_type(L, 2) != LUA_TSTRING)
        return err_raise(L, "script", "%s has no field of type %s", lua_tostring(L, lua_upvalueindex(2)),
                         luaL_typename(L, 2));
    klen = lua_rawlen(L, 2);
    snprintf(key, sizeof key, "%s", lua_tostring(L, 2));
    for (lua_pushnil(L); klen < NAME_MAX_SHOWN && lua_next(L, lua_upvalueindex(1)); lua_pop(L, 1)) {
        size_t n, d;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &n) : NULL;
        if (k && n < NAME_MAX_SHOWN && (d = edit_distance(key, klen, k, n)) < best_d) {
            best_d = d;
            snprintf(best, sizeof best, "%s", k);
        }
    }
    /* close enough to be a typo: one edit, two in a longer name */
    if (best_d <= (klen > 5 ? 2u : 1u) && best_d < klen)
        return err_raise(L, "script", "%s has no field '%s%s' (did you mean '%s'?)",
                         lua_tostring(L, lua_upvalueindex(2)), key, klen >= NAME_MAX_SHOWN ? "..." : "", best);
    return err_raise(L, "script", "%s has no field '%s%s'", lua_tostring(L, lua_upvalueindex(2)), key,
                     klen >= NAME_MAX_SHOWN ? "..." : "");
}

/* pairs(proxy) walks the real table without handing it out: the iterator holds it as an
 * upvalue, and the state it returns is the proxy. */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, ro_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

int sandbox_unproxy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_getmetatable(L, idx))
        return 0;
    /* the metatable is the host's own when its __pairs is ro_pairs: only freeze() makes one */
    lua_pushliteral(L, "__pairs");
    if (lua_rawget(L, -2) == LUA_TFUNCTION && lua_tocfunction(L, -1) == ro_pairs && lua_getupvalue(L, -1, 1)) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

static int ro_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* Replaces the table at idx by a read-only proxy of it; nested tables are frozen first, so
 * `ecap.meters.x = 1` fails like `ecap.x = 1`. */
static void freeze(lua_State *L, int idx, const char *name)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING && !lua_getmetatable(L, -1)) {
            lua_pushfstring(L, "%s.%s", name, lua_tostring(L, -2));
            freeze(L, -2, lua_tostring(L, -1));
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, idx); /* assigning an existing key during traversal is allowed */
        } else {
            if (lua_type(L, -1) == LUA_TFUNCTION && lua_type(L, -2) == LUA_TSTRING)
                err_name(L, -1, name, lua_tostring(L, -2)); /* argument errors name it */
            lua_pop(L, 1);
        }
    }
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, idx);
    if (strict_reads(name)) {
        lua_pushstring(L, name);
        lua_pushcclosure(L, ro_index_strict, 2);
    }
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, ro_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, idx);
}

/* ---- wrapped functions ---------------------------------------------------------------------- */

/* rawset(t, k, v): refused on a read-only proxy (recognised by its __newindex) as any other
 * write; the real rawset (upvalue) otherwise. */
static int sb_rawset(lua_State *L)
{
    if (lua_getmetatable(L, 1)) {
        if (lua_getfield(L, -1, "__newindex") == LUA_TFUNCTION && lua_tocfunction(L, -1) == ro_newindex) {
            lua_insert(L, 1);
            lua_settop(L, 4);
            lua_call(L, 3, 0); /* raises "<name> is read-only (cannot set <key>)" */
        }
        lua_pop(L, 2);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]): text only; env defaults to the sandbox's. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    if (n < 4) {
        sandbox_push_env(L);
        lua_replace(L, 4);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the real load */
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

/* collectgarbage: the script may ask the collector for more work (collect, step), switch its
 * mode or ask how it is doing; never for less ("stop", tuning parameters): every failed
 * allocation ends the run at --max-memory, so a collector held back turns a run that fits into
 * exit 5. The real function is upvalue 1. */
static const char *const gc_allowed[] = {"collect", "count", "step", "isrunning", "incremental",
                                         "generational", NULL};

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (!listed(gc_allowed, opt))
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed in the sandbox (allowed: collect, "
                          "count, step, isrunning, incremental, generational)", opt);
    if ((strcmp(opt, "incremental") == 0 || strcmp(opt, "generational") == 0) && lua_gettop(L) > 1)
        return luaL_error(L, "collectgarbage(\"%s\"): tuning parameters are not allowed in the sandbox", opt);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int valid_module_name(const char *s)
{
    int seg = 0;
    for (; *s; s++) {
        if (isalnum((unsigned char)*s) || *s == '_')
            seg++;
        else if (*s == '.' && seg > 0)
            seg = 0;
        else
            return 0;
    }
    return seg > 0;
}

/* __close of the guard a running module holds (upvalues: loaded, name): a module that failed
 * is no longer "loading" and can be required again, as under lua. An error is not caught in
 * require (it would cut the module's frames from the traceback); the guard runs when the
 * script catches it. */
static int loading_done(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(2));
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == (void *)&LOADING) {
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_pushnil(L);
        lua_rawset(L, lua_upvalueindex(1));
    }
    return 0;
}

/* [-0, +1] the guard of sb_require's module name (1) in loaded (2). */
static void push_loading_guard(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, loading_done, 2);
    lua_setfield(L, -2, "__close");
    lua_setmetatable(L, -2);
}

/* require(name): a module already loaded (ecap, json, ...) or Lua source from the script's
 * directory or a --lib directory, run in the sandbox environment. Never a C module. */
static int sb_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const struct host *h = lua_touserdata(L, lua_upvalueindex(2));
    const struct run_options *cfg = h->opts;
    const char *dirs[RUN_MAX_LIB_DIRS + 1];
    int ndirs = 0;
    char path[4096], rel[1024];
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* loaded */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == (void *)&LOADING)
            return err_raise(L, "script", "require \"%s\": loop in module loading", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!valid_module_name(name) || strlen(name) >= sizeof rel - 5)
        return err_raise(L, "argument", "require \"%s\": bad module name (letters, digits, _ and dots)", name);
    snprintf(rel, sizeof rel, "%s.lua", name);
    for (char *p = rel; *p && p < rel + strlen(name); p++)
        if (*p == '.')
            *p = '/';
    if (h->script_dir)
        dirs[ndirs++] = h->script_dir;
    for (int i = 0; i < cfg->n_lib_dirs && ndirs < RUN_MAX_LIB_DIRS + 1; i++)
        dirs[ndirs++] = cfg->lib_dirs[i];
    for (int i = 0; i < ndirs; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], rel);
        if (access(path, F_OK) != 0) /* not opened here: a FIFO is refused by sandbox_loadfile */
            continue;
        if (sandbox_loadfile(L, path) != LUA_OK)
            return lua_error(L);
        lua_pushlightuserdata(L, (void *)&LOADING);
        lua_setfield(L, 2, name);
        push_loading_guard(L);
        lua_toclose(L, -1);
        lua_pushvalue(L, 3); /* the chunk */
        lua_pushstring(L, name);
        lua_pushstring(L, path);
        lua_call(L, 2, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, 2, name);
        return 1;
    }
    lua_pushnil(L);
    lua_setfield(L, 2, name);
    return err_raise(L, "script", "module '%s' not found (looked for %s in the script's directory%s)", name, rel,
                      cfg->n_lib_dirs ? " and --lib directories" : "; add --lib DIR");
}

static int json_null_tostring(lua_State *L)
{
    lua_pushliteral(L, "json.null");
    return 1;
}

/* ---- building the environment --------------------------------------------------------------- */

static void copy_lib(lua_State *L, int env, int loaded, const struct lib_allow *lib)
{
    luaL_requiref(L, lib->name, lib->open, 1); /* the real library: host-side globals */
    if (lib->except)
        for (const char *const *e = lib->except; *e; e++) {
            lua_pushnil(L);
            lua_setfield(L, -2, *e); /* gone from the real table too: string methods reach it */
        }
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        if (lua_type(L, -2) == LUA_TSTRING && (!lib->only || listed(lib->only, lua_tostring(L, -2)))) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
    if (lib->replace)
        luaL_setfuncs(L, lib->replace, 0);
    if (lib->guard)
        for (const luaL_Reg *r = lib->guard; r->name; r++) {
            lua_getfield(L, -2, r->name); /* the real function */
            lua_pushcclosure(L, r->func, 1);
            lua_setfield(L, -2, r->name);
        }
    freeze(L, -1, lib->name);
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, lib->name); /* require "utf8" returns it, as under lua */
    lua_setfield(L, env, lib->name);
    lua_pop(L, 1);
}

static void set_frozen(lua_State *L, int env, int loaded, const char *name)
{
    freeze(L, -1, name);
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, name);
    lua_setfield(L, env, name);
}

int sandbox_open(lua_State *L, struct host *h)
{
    int env, loaded;
    luaL_checkversion(L);
    err_init(L);
    luaL_requiref(L, "_G", luaopen_base, 1);
    lua_newtable(L);
    env = lua_gettop(L);
    lua_newtable(L);
    loaded = lua_gettop(L);

    for (int i = 0; base_allowed[i]; i++) {
        lua_getfield(L, env - 1, base_allowed[i]);
        lua_setfield(L, env, base_allowed[i]);
    }
    for (size_t i = 0; i < sizeof libs_allowed / sizeof libs_allowed[0]; i++)
        copy_lib(L, env, loaded, &libs_allowed[i]);

    lua_getfield(L, env - 1, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, env, "load");
    lua_getfield(L, env - 1, "rawset");
    lua_pushcclosure(L, sb_rawset, 1);
    lua_setfield(L, env, "rawset");
    lua_getfield(L, env - 1, "collectgarbage");
    lua_pushcclosure(L, sb_collectgarbage, 1);
    lua_setfield(L, env, "collectgarbage");
    lua_pushvalue(L, loaded);
    lua_pushlightuserdata(L, h);
    lua_pushcclosure(L, sb_require, 2);
    lua_setfield(L, env, "require");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_pushvalue(L, env);
    lua_setfield(L, loaded, "_G");
    lua_newtable(L);
    lua_setfield(L, env, "arg");

    /* Protected metatables of the basic types: strings index the real string table (which
     * has no dump), json.null prints as such; neither can be read or replaced. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1); /* luaopen_string's: __index and the string arithmetic ("10" + 1) */
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    json_push_null(L);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, json_null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "json.null");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);

    json_open(L);
    set_frozen(L, env, loaded, "json");
    log_open(L, h->opts->quiet);
    set_frozen(L, env, loaded, "log");
    fs_set_grants(L, &h->opts->fs);
    fs_open(L);
    set_frozen(L, env, loaded, "fs");
    csv_open(L);
    set_frozen(L, env, loaded, "csv");
    ecap_open(L, h);
    set_frozen(L, env, loaded, "ecap");

    lua_pushvalue(L, env);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ENV_KEY);
    lua_settop(L, 0);
    return 0;
}

static int set_env(lua_State *L)
{
    sandbox_push_env(L);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return LUA_OK;
}

/* Feeds a script file to lua_load as luaL_loadfile would (a UTF-8 BOM and a first line
 * starting with '#' are skipped, its newline kept so line numbers stay right), and ends the
 * chunk early when a limit is hit while reading: the caller then reports the limit. */
struct reader {
    FILE *f;
    size_t pos, len;
    int started;
    char buf[4096];
};

static void skip_header(struct reader *r)
{
    char *nl;
    if (r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
        r->pos = 3;
    if (r->pos >= r->len || r->buf[r->pos] != '#')
        return;
    while (!(nl = memchr(r->buf + r->pos, '\n', r->len - r->pos))) {
        r->pos = 0;
        if (!(r->len = fread(r->buf, 1, sizeof r->buf, r->f)))
            return;
    }
    r->pos = (size_t)(nl - r->buf);
}

static const char *read_chunk(lua_State *L, void *ud, size_t *size)
{
    struct reader *r = ud;
    const char *p = r->buf + r->pos;
    *size = 0;
    if (limits_poll(limits_of(L)) != STOP_NONE)
        return NULL;
    if (r->pos >= r->len) {
        r->pos = 0;
        r->len = fread(r->buf, 1, sizeof r->buf, r->f);
        p = r->buf;
    }
    if (!r->started) {
        r->started = 1;
        skip_header(r);
        p = r->buf + r->pos;
    }
    *size = r->len - r->pos;
    r->pos = r->len;
    return *size ? p : NULL;
}

int sandbox_loadfile(lua_State *L, const char *path)
{
    struct reader r = {NULL, 0, 0, 0, {0}};
    int rc;
    if (!(r.f = regfile_open(path))) {
        lua_pushfstring(L, "cannot open %s: %s", path, regfile_why(errno));
        return LUA_ERRFILE;
    }
    if (fs_fd_hidden(L, fileno(r.f))) { /* a module symlinked to the key file, say */
        fclose(r.f);
        lua_pushfstring(L, "cannot open %s: not open to scripts (/proc, /sys and the API key "
                        "file never are)", path);
        return LUA_ERRFILE;
    }
    lua_pushfstring(L, "@%s", path);
    rc = lua_load(L, read_chunk, &r, lua_tostring(L, -1), "t");
    lua_remove(L, -2);
    if (ferror(r.f) && rc != LUA_ERRMEM) {
        lua_pop(L, 1);
        lua_pushfstring(L, "cannot read %s", path);
        rc = LUA_ERRFILE;
    }
    fclose(r.f);
    return rc == LUA_OK ? set_env(L) : rc;
}

int sandbox_loadbuffer(lua_State *L, const char *s, size_t len, const char *name)
{
    int rc = luaL_loadbufferx(L, s, len, name, "t");
    return rc == LUA_OK ? set_env(L) : rc;
}
