/* The sandbox a script runs in (layers, README "The sandbox"): an environment built from an allow-list,
 * read-only proxies for the host's tables and the standard libraries, protected metatables,
 * text-only load and a Lua-source-only require. Memory and time limits: host/run/guard.c. */
#ifndef ECAP_SANDBOX_H
#define ECAP_SANDBOX_H

#include <lua.h>

struct host;

/* Builds the environment of the run h in L (its loop in place; h outlives L). Pushes nothing;
 * raises on failure (call under lua_pcall). */
int sandbox_open(lua_State *L, struct host *h);

/* Pushes the sandbox environment table (the scripts' _ENV). */
void sandbox_push_env(lua_State *L);

/* For inspect_opts.unwrap: when the value at idx is one of the sandbox's read-only proxies,
 * pushes the table it stands for and returns 1 (host code only: the table must not reach the
 * script); otherwise pushes nothing and returns 0. */
int sandbox_unproxy(lua_State *L, int idx);

/* Loads a script file (a regular file only) as text into the sandbox environment; pushes the
 * chunk, or returns the load status with the message pushed: LUA_ERRFILE (cannot open, not a
 * regular file, cannot read), LUA_ERRSYNTAX, LUA_ERRMEM. When a limit was hit while reading,
 * limits_of(L)->stop says which. */
int sandbox_loadfile(lua_State *L, const char *path);

/* Loads source text as a chunk into the sandbox environment (the REPL). */
int sandbox_loadbuffer(lua_State *L, const char *s, size_t len, const char *name);

#endif
