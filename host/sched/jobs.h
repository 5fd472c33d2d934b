/* The schedule file of `ecaphost schedule`: Lua, evaluated in a bare state (base, string,
 * table, math, utf8; no load/dofile/require/print, no API, no files) under a memory and an
 * instruction limit, returning a list of jobs or { max_parallel = N, jobs = { ... } }. Every
 * field is checked here, with messages naming the file and the job; paths are made absolute
 * against the schedule file's directory, and every job's script (and on_failure script) is
 * compiled for syntax. */
#ifndef ECAP_JOBS_H
#define ECAP_JOBS_H

#include <stddef.h>
#include <time.h>

#include "cron.h"

#define JOB_MAX_DIRS 16
#define JOB_DEFAULT_TIMEOUT 3600.0
#define SCHED_DEFAULT_PARALLEL 4

struct job {
    char *name;
    char *script;             /* absolute */
    char **args;
    int n_args;
    long every_s;             /* > 0: an `every` job */
    char *cron_text;          /* else: a cron job */
    struct cron cron;
    char *tz;                 /* cron's zone, or NULL (local time) */
    double timeout_s;         /* passed to the run as --timeout */
    double max_memory_mb;     /* 0: the run's default */
    char *allow_read[JOB_MAX_DIRS];
    int n_read;
    char *allow_write[JOB_MAX_DIRS];
    int n_write;
    int allow_destructive, dry_run;
    int journal;              /* -1 unset (on), 0 off, 1 on */
    char *journal_path;       /* journal = "path": absolute; NULL: <state>/journal/<job>.jsonl */
    char *profile;
    char *on_failure;         /* absolute script path, or NULL */
    char *on_failure_write[JOB_MAX_DIRS];
    int n_on_failure_write;
};

struct schedule {
    char *path;               /* as given (messages) */
    char *abs_path;           /* realpath (the lock's name) */
    char *dir;                /* its directory: working directory of every run */
    int max_parallel;
    struct job *jobs;
    int n_jobs;
};

/* Reads, checks and compiles. Returns 0, or -1 with err ("jobs.lua: job \"x\": ...") and s
 * left empty. */
int schedule_load(const char *path, struct schedule *s, char *err, size_t errlen);
void schedule_free(struct schedule *s);

/* The job named name, or NULL. */
struct job *schedule_find(const struct schedule *s, const char *name);

/* "every 15m" or "cron 0 2 * * * (America/New_York)". */
void job_describe(const struct job *j, char *buf, size_t len);

/* Same timing (every / cron / tz): a reload keeps such a job's next run time. */
int job_same_timing(const struct job *a, const struct job *b);

#endif
