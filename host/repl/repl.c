/* The REPL (stub until the session lands). */
#include <stdio.h>

#include "repl.h"
#include "run/exit_codes.h"

int repl_main(const struct run_options *cfg, int argc, char **argv)
{
    (void)cfg;
    (void)argc;
    (void)argv;
    fprintf(stderr, "ecaphost: 'repl' is not available in this version yet\n");
    return EXIT_USAGE;
}
