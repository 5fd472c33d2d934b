/* Debug builds check that a host entry point leaves a Lua stack as it found it, plus what it
 * documents (as OpenResty's ngx_http_lua_assert does): a slip shows where it happens, not as
 * an overflow or a wrong value much later. Release builds (NDEBUG) compile them away. */
#ifndef ECAP_STACK_H
#define ECAP_STACK_H

#include <lua.h>

#ifdef NDEBUG
#define STACK_ENTER(L) ((void)0)
#define STACK_LEAVE(L, delta) ((void)0)
#else
#include <assert.h>
#define STACK_ENTER(L) const int stack_at_entry_ = lua_gettop(L)
#define STACK_LEAVE(L, delta) assert(lua_gettop(L) == stack_at_entry_ + (delta))
#endif

#endif
