/* Running a script: one fresh sandboxed state, its main chunk as a task on the event loop,
 * the outcome turned into a message and a documented exit code. */
#ifndef ECAP_RUNNER_H
#define ECAP_RUNNER_H

struct config;

/* Runs the script at path with args argv[0..argc). Returns the process exit code. */
int run_script(struct config *cfg, const char *path, int argc, char **argv);

/* One GET to check the key and the connection: prints target, status, latency. */
int run_ping(struct config *cfg);

#endif
