/* Files compiled into the binary (cmake/embed.cmake): each layer that carries files has its
 * own table (run/: the Lua-written helpers; sim/: the simulator's Lua and demo data). */
#ifndef ECAP_EMBEDDED_H
#define ECAP_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name; /* path relative to host/, e.g. "sim/sim.lua" */
    const char *data; /* NUL-terminated */
    size_t len;
};

/* Returns the file of that name in table (ended by a NULL name), or NULL. */
const struct embedded_file *embedded_find(const struct embedded_file *table, const char *name);

#endif
