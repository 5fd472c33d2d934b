/* Running a script: one fresh sandboxed state, its main chunk as a task on the event loop,
 * the outcome turned into a message and a documented exit code. */
#ifndef ECAP_RUNNER_H
#define ECAP_RUNNER_H

struct run_options;

/* Runs the script at path with args argv[0..argc). Returns the process exit code. */
int run_script(const struct run_options *cfg, const char *path, int argc, char **argv);

/* `run -e CHUNK`: runs the text chunk (arg[0] = "-e"; require looks in the working directory
 * and the --lib directories). Returns the process exit code. */
int run_string(const struct run_options *cfg, const char *chunk, int argc, char **argv);

/* `run -`: reads the whole script from stdin (at most --max-memory bytes: else exit 5), then
 * runs it as run_string does, with arg[0] = "-". */
int run_stdin(const struct run_options *cfg, int argc, char **argv);

/* One GET to check the key and the connection: prints target, status, latency. */
int run_ping(const struct run_options *cfg);

#endif
