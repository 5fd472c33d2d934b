/* One constructor and one __tostring for every error a script can catch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "errors.h"

#define ERR_MT "ecap.error"

static const char NAMES_KEY = 'n'; /* registry: function -> "ecap.sleep" */

/* "a.lua:5: http 404 PUT /api/v3/accountmeter/9: not found" /
 * "a.lua:3: validation: x must be ... (got 40)" (no "file:line: " when where is unknown) */
static void push_text(lua_State *L, int t)
{
    luaL_Buffer b;
    int top = lua_gettop(L);
    lua_getfield(L, t, "kind");
    lua_getfield(L, t, "status");
    lua_getfield(L, t, "method");
    lua_getfield(L, t, "path");
    lua_getfield(L, t, "message");
    lua_getfield(L, t, "where");
    luaL_buffinit(L, &b);
    if (lua_type(L, top + 6) == LUA_TSTRING) {
        luaL_addstring(&b, lua_tostring(L, top + 6));
        luaL_addstring(&b, ": ");
    }
    luaL_addstring(&b, lua_type(L, top + 1) == LUA_TSTRING ? lua_tostring(L, top + 1) : "error");
    if (lua_isinteger(L, top + 2)) {
        char num[32];
        snprintf(num, sizeof num, " %lld", (long long)lua_tointeger(L, top + 2));
        luaL_addstring(&b, num);
    }
    if (lua_type(L, top + 3) == LUA_TSTRING && lua_type(L, top + 4) == LUA_TSTRING) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, lua_tostring(L, top + 3));
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, lua_tostring(L, top + 4));
    }
    if (lua_type(L, top + 5) == LUA_TSTRING) {
        luaL_addstring(&b, ": ");
        luaL_addstring(&b, lua_tostring(L, top + 5));
    }
    luaL_pushresult(&b);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

static int err_tostring_mm(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    push_text(L, 1);
    return 1;
}

void err_init(lua_State *L)
{
    if (luaL_newmetatable(L, ERR_MT)) {
        lua_pushcfunction(L, err_tostring_mm);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "ecap.error");
        lua_setfield(L, -2, "__name");
        lua_pushliteral(L, "ecap.error");
        lua_setfield(L, -2, "__metatable"); /* getmetatable() shows this; setmetatable refuses */
    }
    lua_pop(L, 1);
}

static void vpush(lua_State *L, const char *kind, const char *fmt, va_list ap)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushvfstring(L, fmt, ap);
    lua_setfield(L, -2, "message");
    if (err_push_where(L, L))
        lua_setfield(L, -2, "where");
    luaL_setmetatable(L, ERR_MT);
}

void err_push(lua_State *L, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(L, kind, fmt, ap);
    va_end(ap);
}

int err_raise(lua_State *L, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(L, kind, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

int err_is(lua_State *L, int idx)
{
    int is;
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ERR_MT);
    is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return is;
}

void err_tostring(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (err_is(L, idx))
        push_text(L, idx);
    else if (lua_type(L, idx) == LUA_TSTRING)
        lua_pushvalue(L, idx);
    else
        luaL_tolstring(L, idx, NULL);
}

int err_push_where(lua_State *L, lua_State *co)
{
    lua_Debug ar;
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0 || strncmp(ar.source, "=[", 2) == 0)
            continue;
        lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        return 1;
    }
    return 0;
}

/* ---- argument errors --------------------------------------------------------------------- */

void err_name(lua_State *L, int fidx, const char *table, const char *key)
{
    fidx = lua_absindex(L, fidx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &NAMES_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &NAMES_KEY);
    }
    lua_pushvalue(L, fidx);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushvalue(L, fidx);
        lua_pushfstring(L, "%s.%s", table, key);
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);
}

void err_push_funcname(lua_State *L, int level)
{
    lua_Debug ar;
    if (!lua_getstack(L, level, &ar)) {
        lua_pushnil(L);
        return;
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &NAMES_KEY) != LUA_TTABLE)
        return; /* nil: nothing is named in this state */
    lua_getinfo(L, "f", &ar);
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

int err_argerror(lua_State *L, int arg, const char *extramsg)
{
    const char *fname;
    err_push_funcname(L, 0);
    fname = lua_tostring(L, -1);
    return err_raise(L, "argument", "bad argument #%d to '%s' (%s)", arg, fname ? fname : "?",
                     extramsg);
}

/* As luaL_typeerror: the actual type is the metatable's __name when it has one. */
int err_typeerror(lua_State *L, int arg, const char *tname)
{
    const char *actual;
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
        actual = lua_tostring(L, -1);
    else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
        actual = "light userdata";
    else
        actual = luaL_typename(L, arg);
    return err_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, actual));
}

void err_checktype(lua_State *L, int arg, int t)
{
    if (lua_type(L, arg) != t)
        err_typeerror(L, arg, lua_typename(L, t));
}

void err_checkany(lua_State *L, int arg)
{
    if (lua_type(L, arg) == LUA_TNONE)
        err_argerror(L, arg, "value expected");
}

lua_Number err_checknumber(lua_State *L, int arg)
{
    int isnum;
    lua_Number d = lua_tonumberx(L, arg, &isnum);
    if (!isnum)
        err_typeerror(L, arg, "number");
    return d;
}

const char *err_checklstring(lua_State *L, int arg, size_t *len)
{
    const char *s = lua_tolstring(L, arg, len);
    if (!s)
        err_typeerror(L, arg, "string");
    return s;
}
