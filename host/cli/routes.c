/* `ecaphost routes [--json]`: every binding with its method, route, where the route comes from
 * (confirmed by the published reference, inferred, or the config file's override with its
 * file:line) and its description, so an operator can audit the routes without reading C. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cli/routes.h"
#include "lib/json.h"

static void print_text(const struct routes *rt)
{
    int wname = 0, wmethod = 0;
    struct route_info ri;
    for (int i = 0; bindings_route_info(rt, i, &ri) == 0; i++) {
        if ((int)strlen(ri.name) > wname)
            wname = (int)strlen(ri.name);
        if ((int)strlen(ri.method) > wmethod)
            wmethod = (int)strlen(ri.method);
    }
    for (int i = 0; bindings_route_info(rt, i, &ri) == 0; i++) {
        printf("%-*s  %-*s %s\n", wname, ri.name, wmethod, ri.method, ri.path);
        if (ri.provenance == ROUTE_CONFIG)
            printf("%*s  config (%s): %s\n", wname, "", ri.origin, ri.description);
        else
            printf("%*s  %s: %s\n", wname, "", bindings_provenance_name(ri.provenance), ri.description);
    }
}

/* Under lua_pcall: the listing as a JSON array through the project's one JSON codec. */
static int push_json(lua_State *L)
{
    const struct routes *rt = lua_touserdata(L, 1);
    struct route_info ri;
    char err[128];
    lua_newtable(L);
    for (int i = 0; bindings_route_info(rt, i, &ri) == 0; i++) {
        lua_createtable(L, 0, 6);
        lua_pushstring(L, ri.name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, ri.method);
        lua_setfield(L, -2, "method");
        lua_pushstring(L, ri.path);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, bindings_provenance_name(ri.provenance));
        lua_setfield(L, -2, "provenance");
        if (ri.provenance == ROUTE_CONFIG) {
            lua_pushstring(L, ri.origin);
            lua_setfield(L, -2, "origin");
        }
        lua_pushstring(L, ri.description);
        lua_setfield(L, -2, "description");
        lua_rawseti(L, -2, i + 1);
    }
    json_mark_array(L, -1);
    if (json_print(L, -1, stdout, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    return 0;
}

int routes_print(const struct routes *rt, int json)
{
    lua_State *L;
    int rc;
    if (!json) {
        print_text(rt);
        return 0;
    }
    if (!(L = luaL_newstate())) {
        fprintf(stderr, "ecaphost: out of memory\n");
        return -1;
    }
    lua_pushcfunction(L, push_json);
    lua_pushlightuserdata(L, (void *)rt);
    rc = lua_pcall(L, 1, 0, 0);
    if (rc != LUA_OK)
        fprintf(stderr, "ecaphost: routes: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == LUA_OK ? 0 : -1;
}
