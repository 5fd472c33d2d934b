/* The scheduler: the loop that sleeps until the next due time, starts runs as child
 * processes, reaps them and records them; and the one-shot commands (--check, --list,
 * --status, --once). Single-threaded: signals are blocked and taken with sigtimedwait, so the
 * loop sleeps exactly until a run is due, a child ends or a signal comes (no polling). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lib/json.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "run/exit_codes.h"
#include "sched.h"
#include "sched_private.h"

#define MAX_RUNS 600          /* job runs (max_parallel <= 256) and on_failure runs */
#define KILL_AFTER_TIMEOUT 30 /* a run still alive this long past its timeout is killed */
#define STOP_KILL_AFTER 10    /* after --grace, SIGTERM; this much later, SIGKILL */
#define MAX_SLEEP 300         /* wake at least this often: a wall clock set forward is noticed */
#define KEY_FD 3              /* the run's --api-key-fd */

enum run_kind { RUN_JOB, RUN_ON_FAILURE };

struct run {
    pid_t pid;
    enum run_kind kind;
    char job[72];
    time_t scheduled, start;
    double kill_at;           /* monotonic; 0 = never */
    int timed_out;            /* killed by the scheduler at kill_at */
    int lock_fd;              /* the job's lock while it runs, or -1 */
    char output[PATH_MAX];
    char run_id[128];         /* "<job>/<UTC start>", as its output file is named */
    char journal[PATH_MAX];   /* the run's call journal, or "" (none) */
};

struct sched {
    const struct sched_options *o;
    struct schedule s;
    time_t *next;             /* per job of s */
    struct run runs[MAX_RUNS];
    int n_runs;
    struct sched_paths paths;
    FILE *log;                /* the run log, appended */
    lua_State *L;             /* a plain state for the JSON codec */
    int stopping;
    double stop_deadline;     /* monotonic: --grace over */
    int stop_stage;           /* 0 waiting, 1 SIGTERM sent, 2 SIGKILL sent */
};


/* ---- run log ----------------------------------------------------------------------------- */

static int open_run_log(struct sched *sc, char *err, size_t errlen)
{
    int fd = open(sc->paths.run_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || !(sc->log = fdopen(fd, "a"))) {
        snprintf(err, errlen, "run log %.900s: %s", sc->paths.run_log, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

/* Appends one record (one line, flushed). Returns the JSON text (malloc'd) or NULL. */
static char *record(struct sched *sc, const struct record *r)
{
    char *line = record_json(sc->L, r);
    if (!line) {
        job_log("ERROR", r->job, NULL, "cannot encode the run-log record (out of memory)");
        return NULL;
    }
    if (fprintf(sc->log, "%s\n", line) < 0 || fflush(sc->log))
        sched_log("ERROR", "run log %s: %s", sc->paths.run_log, strerror(errno));
    return line;
}

static void record_skipped(struct sched *sc, const struct job *j, time_t scheduled, const char *why)
{
    struct record r = {.job = j->name, .outcome = "skipped", .exit_code = -1, .scheduled = scheduled};
    free(record(sc, &r));
    job_log("WARN", j->name, NULL, "tick skipped (%s)", why);
}

/* ---- starting a run ---------------------------------------------------------------------- */

struct argv_buf {
    char *v[1024];
    int n;
    char nums[8][32]; /* numbers formatted for the command line */
    int n_nums;
};

static void add(struct argv_buf *a, const char *s)
{
    if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1)
        a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static void add_num(struct argv_buf *a, const char *opt, double v)
{
    char *buf = a->nums[a->n_nums++];
    snprintf(buf, sizeof a->nums[0], "%.17g", v);
    add(a, opt);
    add(a, buf);
}

/* `ecaphost run [host options] [the job's options] -- SCRIPT ARGS...`; for on_failure: the
 * same profile, default limits, its own allow_write, and the record as arg[1]. */
static void build_argv(const struct sched *sc, const struct job *j, enum run_kind kind, const char *record_json,
                       const struct run *r, int key_fd, struct argv_buf *a)
{
    memset(a, 0, sizeof *a);
    add(a, "ecaphost");
    add(a, "run");
    for (int i = 0; i < sc->o->n_host_args; i++)
        add(a, sc->o->host_args[i]);
    /* the run's log lines: the scheduler's format, this job and run (lib/log.h) */
    if (sc->o->log_json) {
        add(a, "--log-format");
        add(a, "json");
    }
    add(a, "--log-job");
    add(a, j->name);
    add(a, "--log-run-id");
    add(a, r->run_id);
    if (kind == RUN_JOB) {
        add_num(a, "--timeout", j->timeout_s);
        if (j->max_memory_mb > 0)
            add_num(a, "--max-memory", j->max_memory_mb);
        for (int i = 0; i < j->n_read; i++) {
            add(a, "--allow-read");
            add(a, j->allow_read[i]);
        }
        for (int i = 0; i < j->n_write; i++) {
            add(a, "--allow-write");
            add(a, j->allow_write[i]);
        }
        if (j->allow_destructive)
            add(a, "--allow-destructive");
        if (j->dry_run)
            add(a, "--dry-run");
        if (r->journal[0]) {
            add(a, "--journal");
            add(a, r->journal);
        }
    } else {
        add_num(a, "--timeout", JOB_DEFAULT_TIMEOUT);
        for (int i = 0; i < j->n_on_failure_write; i++) {
            add(a, "--allow-write");
            add(a, j->on_failure_write[i]);
        }
    }
    if (j->profile) {
        add(a, "--profile");
        add(a, j->profile);
    }
    if (key_fd >= 0) {
        add(a, "--api-key-fd");
        add(a, "3");
    }
    add(a, "--");
    if (kind == RUN_JOB) {
        add(a, j->script);
        for (int i = 0; i < j->n_args; i++)
            add(a, j->args[i]);
    } else {
        add(a, j->on_failure);
        add(a, record_json);
    }
}

/* A pipe holding the key, its read end returned (the write end closed: the run reads to EOF).
 * The key fits a pipe's buffer, so the write never blocks. */
static int key_pipe(const char *key)
{
    int p[2];
    size_t len = strlen(key);
    if (len > 4096) {
        errno = EMSGSIZE; /* more than any pipe buffer is sure to hold */
        return -1;
    }
    if (pipe(p))
        return -1;
    if (write(p[1], key, len) != (ssize_t)len) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    close(p[1]);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    return p[0];
}

/* The signals the loop takes with sigtimedwait (blocked in the scheduler, not in its runs). */
static void loop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void exec_child(const struct sched *sc, int out_fd, int key_fd, char **argv)
{
    int null_fd = open("/dev/null", O_RDONLY);
    struct sigaction dfl;
    sigset_t set;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL); /* ignored in the scheduler; handlers end at exec anyway */
    loop_signals(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    setpgid(0, 0); /* a Ctrl-C at the terminal reaches the scheduler, which decides */
    if (chdir(sc->s.dir) || null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(126);
    if (key_fd >= 0 && (key_fd == KEY_FD ? fcntl(KEY_FD, F_SETFD, 0) : dup2(key_fd, KEY_FD)) < 0)
        _exit(126);
    execv(sc->o->exe ? sc->o->exe : "/proc/self/exe", argv);
    {
        static const char msg[] = "ecaphost schedule: cannot execute the run\n";
        if (write(2, msg, sizeof msg - 1) < 0)
            _exit(127);
    }
    _exit(127);
}

/* Starts a run of j (kind RUN_JOB) or of its on_failure (output appended to `output`).
 * Returns the run, or NULL with a logged reason. */
static struct run *start_run(struct sched *sc, const struct job *j, enum run_kind kind, time_t scheduled,
                             const char *on_failure_output, const char *record_text, int lock_fd)
{
    struct run *r;
    struct argv_buf a;
    int out_fd, key_fd = -1;
    pid_t pid;
    if (sc->n_runs >= MAX_RUNS) {
        job_log("ERROR", j->name, NULL, "too many runs in flight");
        return NULL;
    }
    r = &sc->runs[sc->n_runs];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->lock_fd = lock_fd;
    snprintf(r->job, sizeof r->job, "%s", j->name);
    r->scheduled = scheduled;
    r->start = wall_now();
    if (kind == RUN_JOB && journal_file(&sc->paths, j, r->journal, sizeof r->journal) < 0) {
        job_log("ERROR", j->name, NULL, "journal directory under %s: %s", sc->paths.state_dir, strerror(errno));
        return NULL;
    }
    if (kind == RUN_JOB) {
        out_fd = output_open(&sc->paths, j->name, r->start, r->output, sizeof r->output);
    } else {
        snprintf(r->output, sizeof r->output, "%s", on_failure_output);
        out_fd = open(r->output, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (out_fd < 0) {
        job_log("ERROR", j->name, NULL, "output file %s: %s", r->output, strerror(errno));
        return NULL;
    }
    {
        const char *base = strrchr(r->output, '/');
        base = base ? base + 1 : r->output;
        snprintf(r->run_id, sizeof r->run_id, "%s/%.*s", j->name, (int)strcspn(base, "."), base);
    }
    if (sc->o->api_key && (key_fd = key_pipe(sc->o->api_key)) < 0) {
        job_log("ERROR", j->name, NULL, "cannot make the key pipe: %s", strerror(errno));
        close(out_fd);
        return NULL;
    }
    build_argv(sc, j, kind, record_text, r, key_fd, &a);
    pid = fork();
    if (pid == 0)
        exec_child(sc, out_fd, key_fd, a.v);
    close(out_fd);
    if (key_fd >= 0)
        close(key_fd);
    if (pid < 0) {
        job_log("ERROR", j->name, NULL, "fork: %s", strerror(errno));
        return NULL;
    }
    r->pid = pid;
    if (kind == RUN_JOB)
        r->kill_at = now_monotonic() + j->timeout_s + KILL_AFTER_TIMEOUT;
    sc->n_runs++;
    job_log("INFO", j->name, r->run_id, "%s started (pid %ld, output %s)", kind == RUN_JOB ? "run" : "on_failure",
            (long)pid, r->output);
    if (kind == RUN_JOB)
        output_prune(&sc->paths, j->name, OUTPUT_KEEP);
    return r;
}

static int job_running(const struct sched *sc, const char *name)
{
    for (int i = 0; i < sc->n_runs; i++)
        if (sc->runs[i].kind == RUN_JOB && strcmp(sc->runs[i].job, name) == 0)
            return 1;
    return 0;
}

static int job_runs(const struct sched *sc)
{
    int n = 0;
    for (int i = 0; i < sc->n_runs; i++)
        n += sc->runs[i].kind == RUN_JOB;
    return n;
}

/* A due tick of j: skipped when j still runs (or a --once of it holds its lock), else a run. */
static void tick(struct sched *sc, const struct job *j, time_t scheduled)
{
    char path[PATH_MAX], err[512];
    long holder = 0;
    int fd = -1, rc;
    if (job_running(sc, j->name)) {
        record_skipped(sc, j, scheduled, "the previous run is still running");
        return;
    }
    lock_path(&sc->paths, j->name, path, sizeof path);
    rc = lock_take(path, &fd, &holder, err, sizeof err);
    if (rc == 1) {
        snprintf(err, sizeof err, "a run of it holds its lock: pid %ld", holder);
        record_skipped(sc, j, scheduled, err);
        return;
    }
    if (rc < 0)
        job_log("WARN", j->name, NULL, "%s (running it anyway)", err);
    if (!start_run(sc, j, RUN_JOB, scheduled, NULL, NULL, fd) && fd >= 0)
        close(fd);
}

/* ---- ending a run ------------------------------------------------------------------------ */

/* Records the end of run r (wait status st) and starts on_failure when it did not succeed.
 * Returns the run's exit code in the form a shell gives it (128 + signal). */
static int finish_run(struct sched *sc, struct run *r, int st)
{
    struct record rec;
    int code, sig;
    const char *outcome = outcome_of(st, &code, &sig);
    const struct job *j = schedule_find(&sc->s, r->job);
    if (r->timed_out)
        outcome = "timeout";
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    if (r->kind == RUN_ON_FAILURE) {
        job_log(strcmp(outcome, "ok") ? "WARN" : "INFO", r->job, r->run_id, "on_failure ended: %s (%s %d)", outcome,
                sig ? "signal" : "exit", sig ? sig : code);
        return sig ? 128 + sig : code;
    }
    memset(&rec, 0, sizeof rec);
    rec.job = r->job;
    rec.outcome = outcome;
    rec.exit_code = code;
    rec.signal = sig;
    rec.scheduled = r->scheduled;
    rec.start = r->start;
    rec.end = wall_now();
    rec.output = r->output;
    rec.pid = (long)r->pid;
    rec.run_id = r->run_id;
    rec.journal = r->journal[0] ? r->journal : NULL;
    {
        char *line = record(sc, &rec);
        job_log(strcmp(outcome, "ok") ? "WARN" : "INFO", r->job, r->run_id, "run ended: %s (%s %d)", outcome,
                sig ? "signal" : "exit", sig ? sig : code);
        if (strcmp(outcome, "ok") && j && j->on_failure && line && !sc->stopping)
            start_run(sc, j, RUN_ON_FAILURE, r->scheduled, r->output, line, -1);
        free(line);
    }
    return sig ? 128 + sig : code;
}

/* Reaps every ended child; returns the exit code of the last job run reaped (or -1). */
static int reap(struct sched *sc, pid_t *which)
{
    int st, code = -1;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < sc->n_runs; i++) {
            if (sc->runs[i].pid != pid)
                continue;
            struct run r = sc->runs[i]; /* the array may gain an on_failure run */
            sc->runs[i] = sc->runs[--sc->n_runs];
            int c = finish_run(sc, &r, st);
            if (which && r.kind == RUN_JOB) {
                *which = pid;
                code = c;
            }
            break;
        }
    }
    return code;
}

/* SIGKILL for runs past their timeout + KILL_AFTER_TIMEOUT (a run's own --timeout should have
 * ended it: this is for one that hangs anyway). */
static void kill_overdue(struct sched *sc, double mono)
{
    for (int i = 0; i < sc->n_runs; i++) {
        struct run *r = &sc->runs[i];
        if (r->kill_at && mono >= r->kill_at && !r->timed_out) {
            job_log("WARN", r->job, r->run_id, "run (pid %ld) still alive %d s past its timeout: killed", (long)r->pid,
                    KILL_AFTER_TIMEOUT);
            kill(r->pid, SIGKILL);
            r->timed_out = 1;
        }
    }
}

static void signal_runs(struct sched *sc, int sig)
{
    for (int i = 0; i < sc->n_runs; i++)
        kill(sc->runs[i].pid, sig);
}

/* ---- the loop ---------------------------------------------------------------------------- */

static time_t first_next(const struct job *j, time_t now)
{
    return j->every_s ? now + j->every_s : cron_next(&j->cron, j->tz, now);
}

/* The next tick after one at `due` handled at `now`: a missed tick runs once, not many times. */
static time_t after_tick(const struct job *j, time_t due, time_t now)
{
    if (!j->every_s)
        return cron_next(&j->cron, j->tz, now > due ? now : due);
    due += j->every_s;
    if (due <= now)
        due += ((now - due) / j->every_s + 1) * j->every_s;
    return due;
}

static int set_schedule(struct sched *sc, struct schedule *ns)
{
    time_t now = wall_now(), *next = calloc((size_t)ns->n_jobs, sizeof *next);
    if (!next)
        return -1;
    for (int i = 0; i < ns->n_jobs; i++) {
        const struct job *old = sc->next ? schedule_find(&sc->s, ns->jobs[i].name) : NULL;
        next[i] = old && job_same_timing(old, &ns->jobs[i]) ? sc->next[old - sc->s.jobs]
                                                             : first_next(&ns->jobs[i], now);
    }
    schedule_free(&sc->s);
    free(sc->next);
    sc->s = *ns;
    sc->next = next;
    return 0;
}

/* Reads the schedule file and checks each job's profile against the config file. */
static int load(const struct sched_options *o, struct schedule *s, char *err, size_t errlen)
{
    char why[768];
    if (schedule_load(o->file, s, err, errlen))
        return -1;
    for (int i = 0; o->check_profile && i < s->n_jobs; i++)
        if (s->jobs[i].profile && o->check_profile(s->jobs[i].profile, o->check_profile_ud, why, sizeof why)) {
            snprintf(err, errlen, "%s: job \"%s\": profile: %s", s->path, s->jobs[i].name, why);
            schedule_free(s);
            return -1;
        }
    return 0;
}

static void reload(struct sched *sc)
{
    struct schedule ns;
    char err[1024];
    if (load(sc->o, &ns, err, sizeof err)) {
        sched_log("ERROR", "reload failed, keeping the old schedule: %s", err);
        return;
    }
    if (set_schedule(sc, &ns)) {
        schedule_free(&ns);
        sched_log("ERROR", "reload failed, keeping the old schedule: out of memory");
        return;
    }
    sched_log("INFO", "reloaded %s: %d jobs", sc->o->file, sc->s.n_jobs);
}

/* Starts what is due; returns seconds until the next thing to do (MAX_SLEEP at most). */
static double run_due(struct sched *sc)
{
    double wait = MAX_SLEEP, real = now_real(), mono = now_monotonic();
    time_t now = (time_t)floor(real);
    if (!sc->stopping) {
        for (int i = 0; i < sc->s.n_jobs; i++) {
            const struct job *j = &sc->s.jobs[i];
            if (sc->next[i] == (time_t)-1)
                continue;
            /* an every tick is never more than one interval ahead, unless the clock was set
             * back: then the grid restarts from now instead of waiting out the jump */
            if (j->every_s && sc->next[i] - now > j->every_s)
                sc->next[i] = now + j->every_s;
            if (sc->next[i] <= now) {
                /* at max_parallel a due run waits for a slot (a child's end wakes the loop) */
                if (!job_running(sc, j->name) && job_runs(sc) >= sc->s.max_parallel)
                    continue;
                tick(sc, j, sc->next[i]);
                sc->next[i] = after_tick(j, sc->next[i], now);
            }
            if (sc->next[i] != (time_t)-1 && (double)sc->next[i] - real < wait)
                wait = (double)sc->next[i] - real;
        }
    } else {
        if (sc->stop_stage == 0 && mono >= sc->stop_deadline && sc->n_runs) {
            sched_log("WARN", "grace period over: stopping %d runs (SIGTERM)", sc->n_runs);
            signal_runs(sc, SIGTERM);
            sc->stop_stage = 1;
            sc->stop_deadline = mono + STOP_KILL_AFTER;
        } else if (sc->stop_stage == 1 && mono >= sc->stop_deadline) {
            sched_log("WARN", "runs still alive: SIGKILL");
            signal_runs(sc, SIGKILL);
            sc->stop_stage = 2;
        }
        if (sc->stop_stage < 2 && sc->stop_deadline - mono < wait)
            wait = sc->stop_deadline - mono;
    }
    kill_overdue(sc, mono);
    for (int i = 0; i < sc->n_runs; i++)
        if (sc->runs[i].kill_at && !sc->runs[i].timed_out && sc->runs[i].kill_at - mono < wait)
            wait = sc->runs[i].kill_at - mono;
    return wait < 0.001 ? 0.001 : wait;
}

static void no_op(int sig)
{
    (void)sig;
}

/* Blocks the signals the loop takes with sigtimedwait; SIGCHLD gets a handler so it is never
 * discarded as ignored. */
static void block_signals(sigset_t *set)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = no_op;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    loop_signals(set);
    sigprocmask(SIG_BLOCK, set, NULL);
}

static int loop(struct sched *sc)
{
    sigset_t set;
    block_signals(&set);
    sched_log("INFO", "scheduler started: %s, %d jobs, max_parallel %d, run log %s", sc->s.abs_path, sc->s.n_jobs,
              sc->s.max_parallel, sc->paths.run_log);
    for (;;) {
        struct timespec ts;
        siginfo_t info;
        double wait;
        int sig;
        reap(sc, NULL);
        if (sc->stopping && sc->n_runs == 0)
            break;
        wait = run_due(sc);
        ts.tv_sec = (time_t)wait;
        ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
        sig = sigtimedwait(&set, &info, &ts);
        if ((sig == SIGTERM || sig == SIGINT) && !sc->stopping) {
            sc->stopping = 1;
            sc->stop_deadline = now_monotonic() + sc->o->grace_s;
            sched_log("INFO", "%s: starting nothing new; %d runs in flight get %g s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                      sc->n_runs, sc->o->grace_s);
        } else if (sig == SIGHUP && !sc->stopping) {
            reload(sc);
        }
    }
    sched_log("INFO", "scheduler stopped");
    return EXIT_OK;
}

/* ---- commands ---------------------------------------------------------------------------- */

static int list(const struct schedule *s)
{
    time_t now = wall_now();
    for (int i = 0; i < s->n_jobs; i++) {
        const struct job *j = &s->jobs[i];
        char desc[160];
        time_t t = now;
        job_describe(j, desc, sizeof desc);
        printf("%s  %s  %s\n  next:", j->name, desc, j->script);
        for (int k = 0; k < 3; k++) {
            char utc[32], local[64];
            t = j->every_s ? t + j->every_s : cron_next(&j->cron, j->tz, t);
            if (t == (time_t)-1)
                break;
            iso_utc(t, utc, sizeof utc);
            printf("%s %s", k ? "," : "", utc);
            if (j->tz) {
                cron_format_local(t, j->tz, local, sizeof local);
                printf(" (%s)", local);
            }
        }
        putchar('\n');
    }
    return EXIT_OK;
}

/* An every job's next tick after now, on the grid of its last scheduled time (as the running
 * scheduler has it), or 0 when unknown. */
static time_t next_every(const struct job *j, const char *scheduled, time_t now)
{
    int y, mo, d, h, mi, sec;
    time_t t;
    if (!scheduled || sscanf(scheduled, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &sec) != 6)
        return 0;
    t = cron_utc(y, mo, d, h, mi, sec);
    return t + ((now - t) / j->every_s + 1) * j->every_s;
}

/* The last record of each job in the run log (skipped ticks aside); exit 1 when one did not
 * succeed. */
static int status(struct sched *sc)
{
    FILE *f = fopen(sc->paths.run_log, "r");
    char *line = NULL, jerr[256];
    size_t cap = 0;
    ssize_t n;
    int bad = 0, top;
    time_t now = wall_now();
    if (!f && errno != ENOENT) {
        fprintf(stderr, "ecaphost: run log %s: %s\n", sc->paths.run_log, strerror(errno));
        return EXIT_CONFIG;
    }
    lua_newtable(sc->L); /* job name -> last record */
    top = lua_gettop(sc->L);
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (json_decode(sc->L, line, (size_t)n, jerr, sizeof jerr))
            continue; /* a torn last line after a crash */
        if (lua_type(sc->L, -1) == LUA_TTABLE && lua_getfield(sc->L, -1, "job") == LUA_TSTRING
            && lua_getfield(sc->L, -2, "outcome") == LUA_TSTRING && strcmp(lua_tostring(sc->L, -1), "skipped")) {
            lua_pop(sc->L, 1);
            lua_pushvalue(sc->L, -2);
            lua_rawset(sc->L, top);
        }
        lua_settop(sc->L, top);
    }
    free(line);
    if (f)
        fclose(f);
    for (int i = 0; i < sc->s.n_jobs; i++) {
        const struct job *j = &sc->s.jobs[i];
        char desc[160], next[32] = "-";
        const char *outcome = "never run", *end = "", *journal = NULL;
        time_t t = j->every_s ? 0 : cron_next(&j->cron, j->tz, now);
        job_describe(j, desc, sizeof desc);
        if (lua_getfield(sc->L, top, j->name) == LUA_TTABLE) {
            lua_getfield(sc->L, -1, "outcome");
            lua_getfield(sc->L, -2, "end");
            lua_getfield(sc->L, -3, "scheduled");
            outcome = lua_tostring(sc->L, -3);
            end = lua_type(sc->L, -2) == LUA_TSTRING ? lua_tostring(sc->L, -2) : "";
            bad |= strcmp(outcome, "ok") != 0;
            if (j->every_s)
                t = next_every(j, lua_tostring(sc->L, -1), now);
            if (lua_getfield(sc->L, -4, "journal") == LUA_TSTRING)
                journal = lua_tostring(sc->L, -1); /* held by the record until settop */
        }
        if (t > 0)
            iso_utc(t, next, sizeof next);
        printf("%-24s %-10s %-21s next %s (%s)%s%s\n", j->name, outcome, end, next, desc, journal ? "  journal " : "",
               journal ? journal : "");
        lua_settop(sc->L, top);
    }
    lua_settop(sc->L, top - 1);
    return bad ? EXIT_SCRIPT : EXIT_OK;
}

/* --once NAME: runs the job now (refused while a run of it holds its lock), records it, runs
 * on_failure if it fails, prints the run's output, and exits with its code. */
static int once(struct sched *sc)
{
    const struct job *j = schedule_find(&sc->s, sc->o->once);
    char path[PATH_MAX], err[512];
    long holder = 0;
    int fd = -1, rc, code = EXIT_SCRIPT;
    sigset_t set;
    struct run *r;
    char output[PATH_MAX];
    if (!j) {
        fprintf(stderr, "ecaphost: %s has no job named '%s'\n(see ecaphost schedule --list %s)\n", sc->s.path,
                sc->o->once, sc->s.path);
        return EXIT_USAGE;
    }
    lock_path(&sc->paths, j->name, path, sizeof path);
    rc = lock_take(path, &fd, &holder, err, sizeof err);
    if (rc == 1) {
        fprintf(stderr, "ecaphost: job %s is running (pid %ld holds %s)\n", j->name, holder, path);
        return EXIT_TEMPFAIL;
    }
    if (rc < 0) {
        fprintf(stderr, "ecaphost: %s\n", err);
        return EXIT_CONFIG;
    }
    block_signals(&set);
    if (!(r = start_run(sc, j, RUN_JOB, wall_now(), NULL, NULL, fd))) {
        close(fd);
        return EXIT_SCRIPT;
    }
    snprintf(output, sizeof output, "%s", r->output);
    while (sc->n_runs) {
        pid_t which = 0;
        int c;
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig == SIGTERM || sig == SIGINT)
            signal_runs(sc, sig); /* the run stops as it would at the terminal */
        c = reap(sc, &which);
        if (which)
            code = c;
    }
    {
        FILE *f = fopen(output, "r");
        char buf[8192];
        size_t n;
        while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        if (f)
            fclose(f);
    }
    return code;
}

int sched_main(const struct sched_options *o)
{
    static struct sched sc; /* big (the runs): not on the stack */
    char err[1024], path[PATH_MAX];
    long holder = 0;
    int rc, lock_fd = -1;
    memset(&sc, 0, sizeof sc);
    sc.o = o;
    if (!(sc.L = luaL_newstate())) {
        fprintf(stderr, "ecaphost: out of memory\n");
        return EXIT_SCRIPT;
    }
    if (o->log_json && log_set_format(LOG_JSON)) {
        fprintf(stderr, "ecaphost: out of memory\n");
        lua_close(sc.L);
        return EXIT_SCRIPT;
    }
    unsetenv("ECAP_API_KEY"); /* no run's environment has the key: it goes on a pipe */
    if (load(o, &sc.s, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (!(sc.next = calloc((size_t)sc.s.n_jobs, sizeof *sc.next))) {
        rc = EXIT_SCRIPT;
        goto out;
    }
    if (o->check) {
        printf("%s: %d jobs, every script compiles\n", sc.s.path, sc.s.n_jobs);
        rc = EXIT_OK;
        goto out;
    }
    if (o->list) {
        rc = list(&sc.s);
        goto out;
    }
    if (state_paths(&sc.s, o->run_log, &sc.paths, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (o->status) {
        rc = status(&sc);
        goto out;
    }
    if (open_run_log(&sc, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (o->once) {
        rc = once(&sc);
        goto out;
    }
    lock_path(&sc.paths, NULL, path, sizeof path);
    rc = lock_take(path, &lock_fd, &holder, err, sizeof err);
    if (rc) {
        if (rc == 1)
            fprintf(stderr, "ecaphost: %s is already scheduled by pid %ld (lock %s)\n", sc.s.abs_path, holder, path);
        else
            fprintf(stderr, "ecaphost: %s\n", err);
        rc = rc == 1 ? EXIT_TEMPFAIL : EXIT_CONFIG;
        goto out;
    }
    {
        struct schedule s = sc.s;
        memset(&sc.s, 0, sizeof sc.s);
        free(sc.next);
        sc.next = NULL;
        if (set_schedule(&sc, &s)) {
            schedule_free(&s);
            rc = EXIT_SCRIPT;
            goto out;
        }
    }
    rc = loop(&sc);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    if (sc.log)
        fclose(sc.log);
    log_set_format(LOG_TEXT);
    lua_close(sc.L);
    free(sc.next);
    schedule_free(&sc.s);
    return rc;
}
