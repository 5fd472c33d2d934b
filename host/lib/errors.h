/* Error values seen by scripts: one constructor, one metatable, one __tostring.
 *
 * An error is a table {kind=, message=, ...} with the shared, protected metatable
 * "ecap.error". Kinds: "http", "network", "timeout", "validation", "config",
 * "cancelled", "sandbox", "io", "csv", "script". Callers add the fields that apply (status,
 * method, path, body, field, rule, value) with lua_setfield before raising.
 *
 * Messages are formatted by lua_pushvfstring, which knows only %s %d %I %f %p %c %U %%:
 * the compiler checks the arguments as printf's, so cast to int (or use %I with
 * (LUAI_UACINT)) instead of writing %zu or %ld. */
#ifndef ECAP_ERRORS_H
#define ECAP_ERRORS_H

#include <lua.h>

/* Creates the shared metatable; call once per state before any error is built. */
void err_init(lua_State *L);

/* Pushes a new error table {kind=kind, message=<formatted>}. */
void err_push(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* err_push + lua_error. Never returns. */
int err_raise(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when the value at idx is an ecap error table. */
int err_is(lua_State *L, int idx);

/* Pushes the one-line text of any error value (error table, string, other). */
void err_tostring(lua_State *L, int idx);

#endif
