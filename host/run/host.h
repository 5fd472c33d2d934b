/* Per-run context shared by the C parts that a Lua state reaches: settings, event loop,
 * limits. One per lua_State, found through the registry. */
#ifndef ECAP_HOST_H
#define ECAP_HOST_H

#include <lua.h>

struct config;
struct loop;

struct host {
    const struct config *cfg;
    struct loop *loop;
    const char *script_dir;  /* directory of the main script (require searches it), or NULL */
};

/* Stores h in the registry of L (a pointer; the caller keeps h alive until lua_close). */
void host_set(lua_State *L, struct host *h);
struct host *host_get(lua_State *L);

#endif
