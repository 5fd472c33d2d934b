/* Running a script: one fresh sandboxed state, its main chunk as a task on the event loop,
 * the outcome turned into a message and a documented exit code. */
#ifndef ECAP_RUNNER_H
#define ECAP_RUNNER_H

struct run_options;

/* Runs the script at path with args argv[0..argc). Returns the process exit code. */
int run_script(const struct run_options *cfg, const char *path, int argc, char **argv);

/* One GET to check the key and the connection: prints target, status, latency. */
int run_ping(const struct run_options *cfg);

#endif
