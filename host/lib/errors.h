/* Error values seen by scripts: one constructor, one metatable, one __tostring.
 *
 * An error is a table {kind=, message=, where=, ...} with the shared, protected metatable
 * "ecap.error". Kinds: "argument", "http", "network", "timeout", "validation", "cancelled",
 * "sandbox", "io", "csv", "json", "script". `where` is the script's "file:line" of the call
 * that failed (see err_push_where), absent when no frame of the script is on the stack.
 * Callers add the fields that apply (status, method, path, body, field, rule, value) with
 * lua_setfield before raising.
 *
 * Messages are formatted by lua_pushvfstring, which knows only %s %d %I %f %p %c %U %%:
 * the compiler checks the arguments as printf's, so cast to int (or use %I with
 * (LUAI_UACINT)) instead of writing %zu or %ld. */
#ifndef ECAP_ERRORS_H
#define ECAP_ERRORS_H

#include <stddef.h>
#include <lua.h>

/* Creates the shared metatable; call once per state before any error is built. */
void err_init(lua_State *L);

/* Pushes a new error table {kind=kind, message=<formatted>, where=<L's script position>}. */
void err_push(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* err_push + lua_error. Never returns. */
int err_raise(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when the value at idx is an ecap error table. */
int err_is(lua_State *L, int idx);

/* Pushes the one-line text of any error value (error table, string, other). */
void err_tostring(lua_State *L, int idx);

/* [-0, +(0|1)] Pushes on L the "file:line" of the innermost Lua frame of thread co that is
 * the script's own: the host's embedded Lua helpers (chunk names "=[...]", like "=[ecap]")
 * and C functions are skipped. Returns 1, or 0 with nothing pushed when there is none. */
int err_push_where(lua_State *L, lua_State *co);

/* ---- argument errors: luaL_check* that raise {kind="argument"} ---------------------------
 * "bad argument #1 to 'ecap.sleep' (number expected, got string)". The function is named by
 * err_name (the sandbox records every function of its frozen tables), else "?". They cost
 * what luaL_check* cost when the argument is good. */

/* [-0, +0] Records the function at fidx under the name "<table>.<key>" (first name wins). */
void err_name(lua_State *L, int fidx, const char *table, const char *key);

int err_argerror(lua_State *L, int arg, const char *extramsg);
int err_typeerror(lua_State *L, int arg, const char *tname);
void err_checktype(lua_State *L, int arg, int t);
void err_checkany(lua_State *L, int arg);
lua_Number err_checknumber(lua_State *L, int arg);
const char *err_checklstring(lua_State *L, int arg, size_t *len);
#define err_checkstring(L, arg) err_checklstring((L), (arg), NULL)

/* [-0, +1] The recorded name of the function running at stack level `level` of L, or nil. */
void err_push_funcname(lua_State *L, int level);

#endif
