/* Private to the scheduler (sched.c, sched_files.c): the state directory, locks, output files,
 * run-log records and log lines. */
#ifndef ECAP_SCHED_PRIVATE_H
#define ECAP_SCHED_PRIVATE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <lua.h>

#include "jobs.h"

#define OUTPUT_KEEP 20 /* output files kept per job */
#define TAIL_LINES 10  /* lines of output in a run-log record */

struct sched_paths {
    char state_dir[3072];      /* shorter than PATH_MAX: room for what goes under it */
    char run_log[PATH_MAX];
    char lock_base[PATH_MAX];  /* <state>/locks/<schedule's absolute path, escaped> */
};

/* Finds (and creates) the state directory: $STATE_DIRECTORY, $XDG_STATE_HOME/ecaphost,
 * ~/.local/state/ecaphost. Returns 0 or -1 with err. */
int state_paths(const struct schedule *s, const char *run_log, struct sched_paths *p, char *err, size_t errlen);

/* The lock file of the schedule (job NULL) or of one job's runs. */
void lock_path(const struct sched_paths *p, const char *job, char *buf, size_t len);

/* Takes the lock at path without waiting: 0 (*fd holds it; close to release), 1 when another
 * process holds it (*holder: its pid), -1 with err. */
int lock_take(const char *path, int *fd, long *holder, char *err, size_t errlen);

/* Creates output/<job>/<UTC start>.log; returns its fd (close-on-exec) and its path, or -1. */
int output_open(const struct sched_paths *p, const char *job, time_t start, char *path, size_t len);

/* The call journal of j's runs into buf: the job's journal = "path", else
 * <state>/journal/<job>.jsonl (the directory created 0700). Returns 1 with buf, 0 when the job
 * has journal = false, -1 (errno) when the directory cannot be made. */
int journal_file(const struct sched_paths *p, const struct job *j, char *buf, size_t len);

/* Deletes all but the newest `keep` output files of a job. */
void output_prune(const struct sched_paths *p, const char *job, int keep);

/* The wall clock (CLOCK_REALTIME) in seconds, and in whole seconds: one clock for due times,
 * records and log lines (time() reads a coarser clock that can lag by a few milliseconds: a
 * run due at :36 would be logged as started at :35). */
double now_real(void);
time_t wall_now(void);

/* "2026-12-02T16:40:05Z" */
void iso_utc(time_t t, char *buf, size_t len);

/* One log line on stderr: "2026-12-02T16:40:05Z INFO  message" (job_log: "... INFO  job x:
 * message"), or under --log-format json (lib/log.h) one JSON object
 * {"time","level","msg"[,"job"][,"run_id"]}. */
void sched_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void job_log(const char *level, const char *job, const char *run_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One run as the run log records it. */
struct record {
    const char *job, *outcome;
    int exit_code;               /* -1: none (skipped, or a signal death) */
    int signal;                  /* the signal that ended it, or 0 */
    time_t scheduled, start, end; /* start/end 0: not run */
    const char *output;          /* output file, or NULL */
    long pid;
    const char *run_id;          /* or NULL */
    const char *journal;         /* the run's call journal, or NULL */
};

/* The record as one JSON line (no newline), malloc'd; the tail of its output file included.
 * L is a plain state used for the codec. Returns NULL on failure. */
char *record_json(lua_State *L, const struct record *r);

/* The outcome name of a child's wait status. */
const char *outcome_of(int status, int *exit_code, int *sig);

#endif
