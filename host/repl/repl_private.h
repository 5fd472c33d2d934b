/* Shared by the REPL's files: .help and tab completion. */
#ifndef ECAP_REPL_PRIVATE_H
#define ECAP_REPL_PRIVATE_H

#include <lua.h>

struct run_options;

/* .help: the REPL's commands and every binding with its method, route and description. */
void repl_help(const struct run_options *cfg);

/* Tab completion of globals and table fields (`ecap.me` -> `ecap.meters.`) in the session's
 * state L, read raw and through the host's read-only proxies: no script code runs. */
void repl_completion_init(lua_State *L);

#endif
