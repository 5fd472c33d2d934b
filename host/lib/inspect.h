/* The readable printer (ecap.inspect, the REPL's results): a value as Lua table-constructor
 * text that pastes back as Lua. Keys sorted (array part first, then numbers, strings, the
 * rest), nesting indented, short scalar-only tables on one line, json.null as `json.null`,
 * floats with a decimal point (`1.0`), a table inside itself as `<cycle>`, and every cut
 * (depth, items per table, total size) marked by a `--[[ ... ]]` note saying how much was
 * left out. Tables are read raw: no metamethod of the script runs. */
#ifndef ECAP_INSPECT_H
#define ECAP_INSPECT_H

#include <stddef.h>
#include <lua.h>

struct inspect_opts {
    int depth;        /* nesting levels shown (default 6) */
    int max_items;    /* entries shown per table (default 100) */
    int indent;       /* spaces per level (default 2); 0 = everything on one line */
    size_t max_bytes; /* output cut past this many bytes (default 1 MB) */
    /* Optional: for a read-only proxy of the host at idx, pushes the table it stands for and
     * returns 1; otherwise pushes nothing and returns 0. Lets the printer show `ecap`. */
    int (*unwrap)(lua_State *L, int idx);
};

void inspect_defaults(struct inspect_opts *o);

/* Reads opts.depth / max_items / indent from the table at idx (nil: defaults kept); an
 * unknown option or a bad value raises a validation error naming it. fname names the caller
 * in messages ("ecap.inspect"). */
void inspect_read_opts(lua_State *L, int idx, struct inspect_opts *o, const char *fname);

/* [-0, +1] Pushes the text of the value at idx. Raises only on memory exhaustion. */
void inspect_push(lua_State *L, int idx, const struct inspect_opts *o);

/* True when s[0..n) can follow a dot: a Lua name that is not a reserved word. */
int inspect_is_name(const char *s, size_t n);

#endif
