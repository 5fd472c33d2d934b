/* Files compiled into the binary (cmake/embed.cmake): Lua sources of the host and the
 * simulator, the simulator's demo data. */
#ifndef ECAP_EMBEDDED_H
#define ECAP_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name; /* path relative to host/, e.g. "sim/sim.lua" */
    const char *data; /* NUL-terminated */
    size_t len;
};

extern const struct embedded_file embedded_files[];

/* Returns the file of that name, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
