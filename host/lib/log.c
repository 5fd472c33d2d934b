/* The log module: log.info/warn/error(fmt, ...) write one timestamped line to stderr,
 *
 *   2026-11-23T18:35:16Z INFO  message
 *
 * (UTC, ISO 8601, the level padded to five characters). The message is string.format(fmt, ...);
 * a call with a single argument writes that value as tostring would (so log.error(err) shows an
 * error table's text, and a lone message with a '%' in it is not a format). A bad format
 * raises an "argument" error naming the log function; errors of the script's own __tostring
 * pass as they are. Control characters in the message are escaped (\n, \r, \xNN; C1
 * controls too), so one call is one line and data from the API cannot drive the terminal.
 * --quiet silences info only; the message is formatted anyway, so a bad format fails the same
 * way with and without --quiet. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "errors.h"
#include "libs.h"
#include "text.h"

/* Upvalue 2 of the log functions: --quiet. */
static int quiet(lua_State *L)
{
    return lua_toboolean(L, lua_upvalueindex(2));
}

/* Pushes string.format: upvalue 1 when it holds it, else the loaded string library's. */
static void push_format(lua_State *L)
{
    if (lua_type(L, lua_upvalueindex(1)) == LUA_TFUNCTION) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return;
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "string") != LUA_TTABLE ||
        lua_getfield(L, -1, "format") != LUA_TFUNCTION)
        luaL_error(L, "log: the string library is not loaded");
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static int to_text(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static int log_info(lua_State *L);
static int log_warn(lua_State *L);
static int log_error(lua_State *L);

/* Message handler of the formatting: an error raised by the function the log function called
 * itself (string.format or to_text: a bad directive, a bad argument for it, a __tostring that
 * returns no string) becomes the log function's argument error. Level 1 raised it; level 2
 * is the log function when that is the formatter, else (the script's __tostring, a stop of
 * the run) the error passes as it is. */
static int format_failed(lua_State *L)
{
    lua_Debug ar;
    lua_CFunction f = NULL;
    if (lua_type(L, 1) == LUA_TSTRING && lua_getstack(L, 2, &ar)) {
        lua_getinfo(L, "f", &ar);
        f = lua_tocfunction(L, -1);
        lua_settop(L, 1);
    }
    if (f != log_info && f != log_warn && f != log_error)
        return 1;
    err_push_funcname(L, 2);
    err_push(L, "argument", "%s: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "log",
             lua_tostring(L, 1));
    return 1;
}

/* Replaces the arguments by the message text. */
static void message(lua_State *L)
{
    int n = lua_gettop(L);
    err_checkany(L, 1);
    lua_pushcfunction(L, format_failed);
    lua_insert(L, 1);
    if (n == 1)
        lua_pushcfunction(L, to_text);
    else
        push_format(L);
    lua_insert(L, 2);
    if (lua_pcall(L, n, 1, 1) != LUA_OK)
        lua_error(L);
    lua_remove(L, 1);
}

static void timestamp(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "0000-00-00T00:00:00Z");
}

/* [-0, +0] One line: "<UTC time> LEVEL message", the message escaped (text_escape). */
void log_write(lua_State *L, const char *level, const char *msg, size_t len)
{
    char head[48], ts[32];
    const char *line;
    luaL_Buffer b;
    timestamp(ts, sizeof ts);
    snprintf(head, sizeof head, "%s %-5s ", ts, level);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, head);
    text_escape(&b, msg, len, TEXT_ALL);
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    line = lua_tolstring(L, -1, &len);
    fwrite(line, 1, len, stderr); /* one write per line */
    fflush(stderr);
    lua_pop(L, 1);
}

static int emit(lua_State *L, const char *level, int silenced)
{
    size_t len;
    const char *msg;
    message(L);
    msg = lua_tolstring(L, -1, &len);
    if (!silenced)
        log_write(L, level, msg, len);
    return 0;
}

static int log_info(lua_State *L)
{
    return emit(L, "INFO", quiet(L));
}

static int log_warn(lua_State *L)
{
    return emit(L, "WARN", 0);
}

static int log_error(lua_State *L)
{
    return emit(L, "ERROR", 0);
}

static const luaL_Reg log_funcs[] = {
    {"info", log_info},
    {"warn", log_warn},
    {"error", log_error},
    {NULL, NULL},
};

void log_open(lua_State *L, int quiet_run)
{
    luaL_newlibtable(L, log_funcs);
    /* string.format as it is now, so that a script cannot swap the function log calls */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "string") == LUA_TTABLE)
        lua_getfield(L, -1, "format");
    else
        lua_pushnil(L);
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_pushboolean(L, quiet_run);
    luaL_setfuncs(L, log_funcs, 2);
}
