/* .help: the REPL's commands, then the bindings from the run's route table. */
#include <stdio.h>
#include <string.h>

#include "repl_private.h"
#include "run/host.h"

void repl_help(const struct run_options *cfg)
{
    struct route_info ri;
    int w = 0;
    printf("Commands:\n"
           "  .help              this list\n"
           "  .exit, Ctrl-D      quit\n"
           "  Ctrl-C             stop the running statement; at the prompt, clear the line\n"
           "  TAB                complete a global or a field (ecap.me<TAB>)\n"
           "An expression prints its value(s) (ecap.inspect); an unfinished statement continues on >>.\n"
           "\n"
           "Bindings (ecap.<area>.<function>; ecap.request(method, path [, opts]) reaches any endpoint):\n");
    for (int i = 0; bindings_route_info(cfg->routes, i, &ri) == 0; i++)
        if ((int)strlen(ri.name) > w)
            w = (int)strlen(ri.name);
    for (int i = 0; bindings_route_info(cfg->routes, i, &ri) == 0; i++)
        printf("  ecap.%-*s  %-6s %s\n  %*s  %s\n", w, ri.name, ri.method, ri.path, w + 5, "", ri.description);
    printf("\nAlso: ecap.pages, ecap.parallel, ecap.filter, ecap.sleep, ecap.now, ecap.config,\n"
           "ecap.inspect, ecap.cost_avoidance.wait; json, log, fs, csv (see README).\n");
    fflush(stdout);
}
