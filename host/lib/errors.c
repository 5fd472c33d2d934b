/* One constructor and one __tostring for every error a script can catch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "errors.h"

#define ERR_MT "ecap.error"

/* "http 404 PUT /api/v3/accountmeter/9: not found" / "validation: x must be ... (got 40)" */
static void push_text(lua_State *L, int t)
{
    luaL_Buffer b;
    int top = lua_gettop(L);
    lua_getfield(L, t, "kind");
    lua_getfield(L, t, "status");
    lua_getfield(L, t, "method");
    lua_getfield(L, t, "path");
    lua_getfield(L, t, "message");
    luaL_buffinit(L, &b);
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
