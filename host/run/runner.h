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

/* A session: one sandboxed state and its loop kept across many chunks (the REPL). --timeout
 * applies to each chunk, --max-memory to the session. */
struct run_session;

/* Opens a session (script_dir: where require looks first, must outlive it) and prints the
 * banner as `run` does. NULL on failure, with the message printed. */
struct run_session *session_open(const struct run_options *cfg, const char *script_dir);
lua_State *session_state(struct run_session *s);
void session_close(struct run_session *s);

/* Runs the function and its nargs arguments on top of the session's stack (popped) as a host
 * task on the loop, under a fresh --timeout. Returns 0 with a table {n=, ...} of its results
 * pushed; otherwise pushes nothing, prints the error or the stop ("ecaphost: ..."), drops
 * what the chunk left running (tasks, transfers), clears the stop so the session can go on,
 * and returns the exit code it would have had as a run (1, 4, 5, 130, 143). */
int session_run(struct run_session *s, int nargs);

/* One GET to check the key and the connection: prints target, status, latency. */
int run_ping(const struct run_options *cfg);

#endif
