/* The one JSON codec of ecaphost (scripts, bindings, simulator).
 *
 * Lua side: integral JSON numbers decode to Lua integers, others to floats; JSON null is
 * json.null (a light userdata NULL, the same value cjson uses); empty arrays decode to tables
 * carrying the shared array metatable and empty objects to tables carrying the object
 * metatable, so both re-encode as they came. An unmarked empty table encodes as [] (this API's
 * bodies hold empty lists, almost never empty objects). */
#ifndef ECAP_JSON_H
#define ECAP_JSON_H

#include <stddef.h>
#include <stdio.h>
#include <lua.h>

/* Pushes the `json` module table: encode, decode, null, array, object. Registers the array
 * and object metatables in the registry on first use in a state. Its functions raise error
 * tables (lib/errors.h: kind "json", or "argument"): call err_init on the state first. */
int json_open(lua_State *L);

/* Decodes s[0..len) and pushes the value. On error pushes nothing, writes a message naming the
 * position ("unexpected '}' at line 3, column 7") into err and returns -1. */
int json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen);

/* Encodes the value at idx. Returns a buffer allocated with the state's allocator (so it
 * counts against the sandbox's memory limit; free it with json_free) and its length in *len.
 * On error returns NULL and writes a message naming the path ("body.filters[2].value: cannot
 * encode NaN") into err. */
char *json_encode(lua_State *L, int idx, size_t *len, char *err, size_t errlen);
void json_free(lua_State *L, char *buf, size_t len);

/* json_encode with indent > 0: one member or item per line, nested ones indented by indent
 * spaces per level, ": " after keys; empty containers stay [] and {}. */
char *json_encode_pretty(lua_State *L, int idx, int indent, size_t *len, char *err, size_t errlen);

/* [-0, +0] json_encode's text of the value at idx and a newline, written to f (a command's
 * --json output). Returns 0, or -1 with a message in err. */
int json_print(lua_State *L, int idx, FILE *f, char *err, size_t errlen);

/* Pushes the null sentinel; tests whether the value at idx is it. */
void json_push_null(lua_State *L);
int json_is_null(lua_State *L, int idx);

/* Marks the table at idx as a JSON array / object (sets the shared metatable). */
void json_mark_array(lua_State *L, int idx);
void json_mark_object(lua_State *L, int idx);

#endif
