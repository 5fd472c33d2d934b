/* The interactive session: `ecaphost repl` (and `ecaphost` alone on a terminal). */
#ifndef ECAP_REPL_H
#define ECAP_REPL_H

struct run_options;

/* Runs the REPL with the arguments after the host options (-l MODULE, -i SCRIPT [ARGS...]).
 * Returns the process exit code. */
int repl_main(const struct run_options *cfg, int argc, char **argv);

#endif
