/* Libraries the sandbox gives scripts besides ecap: fs (granted directories only), csv, log.
 * Each open function pushes its module table. */
#ifndef ECAP_LIBS_H
#define ECAP_LIBS_H

#include <lua.h>

int fs_open(lua_State *L);
int csv_open(lua_State *L);
int log_open(lua_State *L);

#endif
