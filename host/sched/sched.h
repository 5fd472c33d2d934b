/* `ecaphost schedule`: runs the jobs of a schedule file (jobs.h) on time, each as a child
 * process `ecaphost run ... SCRIPT ARGS...` (fork + exec of this binary), never a script in
 * its own process. Records every run in the run log, keeps each run's output, holds the
 * schedule's lock, and answers SIGTERM/SIGINT (stop), SIGHUP (reload). */
#ifndef ECAP_SCHED_H
#define ECAP_SCHED_H

#include <stddef.h>

struct sched_options {
    const char *file;              /* the schedule file */
    const char *run_log;           /* --run-log FILE, or NULL: <state>/runs.jsonl */
    const char *once;              /* --once NAME */
    int list, check, status;
    int log_json;                  /* --log-format json: log lines as JSON objects */
    double grace_s;                /* --grace S (default 30) */
    char *const *host_args;        /* host options given before the file, passed to every run */
    int n_host_args;
    const char *api_key;           /* the key the scheduler holds (from $ECAP_API_KEY), or NULL:
                                    * reaches each run on a pipe (--api-key-fd), never its
                                    * environment */
    const char *exe;               /* the binary to run (NULL: /proc/self/exe) */
    /* Checks that a job's profile exists (cli/ knows the config file); NULL: not checked.
     * Returns 0, or -1 with err. */
    int (*check_profile)(const char *profile, void *ud, char *err, size_t errlen);
    void *check_profile_ud;
};

/* Runs the command; returns the process exit code (0 after SIGTERM/SIGINT, 2 usage or unknown
 * --once name, 3 bad schedule file or failed --check, 75 lock held; --once: the job's code;
 * --status: 1 when a job's last run did not succeed). */
int sched_main(const struct sched_options *o);

#define EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: another scheduler holds the lock */

#endif
