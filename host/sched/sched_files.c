/* The scheduler's files: state directory, locks, per-run output files, run-log records. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lib/json.h"
#include "lib/log.h"
#include "run/exit_codes.h"
#include "sched_private.h"

double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

time_t wall_now(void)
{
    return (time_t)now_real();
}

void iso_utc(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void log_line(const char *level, const char *job, const char *run_id, const char *fmt, va_list ap)
{
    char when[32], msg[2048];
    struct log_field fields[2];
    int n = 0, len = vsnprintf(msg, sizeof msg, fmt, ap);
    if (job)
        fields[n++] = (struct log_field){"job", job, 0};
    if (run_id)
        fields[n++] = (struct log_field){"run_id", run_id, 0};
    if (len >= 0 && log_json(level, msg, strlen(msg), fields, n) == 0)
        return;
    iso_utc(wall_now(), when, sizeof when);
    if (job)
        fprintf(stderr, "%s %-5s job %s: %s\n", when, level, job, msg);
    else
        fprintf(stderr, "%s %-5s %s\n", when, level, msg);
    fflush(stderr);
}

void sched_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void job_log(const char *level, const char *job, const char *run_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, job, run_id, fmt, ap);
    va_end(ap);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

/* The first directory of $STATE_DIRECTORY (systemd may list several, ':'-separated). */
static int state_dir(char *buf, size_t len)
{
    const char *sd = getenv("STATE_DIRECTORY"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int n;
    if (sd && *sd)
        n = snprintf(buf, len, "%.*s", (int)strcspn(sd, ":"), sd);
    else if (xdg && *xdg)
        n = snprintf(buf, len, "%s/ecaphost", xdg);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.local/state/ecaphost", home);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The schedule's absolute path as one file name: bytes other than letters, digits, '_' and
 * '-' become %XX (so '/' and '.' never clash); a long name keeps its end and a hash. */
static void escape_name(const char *path, char *out, size_t len)
{
    char buf[PATH_MAX * 3 + 1];
    size_t n = 0;
    unsigned long h = 5381;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        h = h * 33 + *p;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
            buf[n++] = (char)*p;
        else
            n += (size_t)sprintf(buf + n, "%%%02X", *p);
    }
    buf[n] = 0;
    if (n <= 180)
        snprintf(out, len, "%s", buf);
    else
        snprintf(out, len, "%08lx-%s", h & 0xffffffffUL, buf + n - 160);
}

int state_paths(const struct schedule *s, const char *run_log, struct sched_paths *p, char *err, size_t errlen)
{
    char name[256], dir[sizeof p->state_dir + 8];
    memset(p, 0, sizeof *p);
    if (state_dir(p->state_dir, sizeof p->state_dir)) {
        snprintf(err, errlen, "no state directory: set STATE_DIRECTORY, XDG_STATE_HOME or HOME");
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/locks", p->state_dir);
    if (make_dirs(dir)) {
        snprintf(err, errlen, "state directory %s: %s", dir, strerror(errno));
        return -1;
    }
    escape_name(s->abs_path, name, sizeof name);
    snprintf(p->lock_base, sizeof p->lock_base, "%s/%s", dir, name);
    if (run_log)
        snprintf(p->run_log, sizeof p->run_log, "%s", run_log);
    else
        snprintf(p->run_log, sizeof p->run_log, "%s/runs.jsonl", p->state_dir);
    return 0;
}

void lock_path(const struct sched_paths *p, const char *job, char *buf, size_t len)
{
    if (job)
        snprintf(buf, len, "%s.job.%s.lock", p->lock_base, job);
    else
        snprintf(buf, len, "%s.lock", p->lock_base);
}

int lock_take(const char *path, int *fd, long *holder, char *err, size_t errlen)
{
    struct flock fl;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        snprintf(err, errlen, "lock %s: %s", path, strerror(errno));
        return -1;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(f, F_SETLK, &fl) == 0) {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(f, 0) == 0 && write(f, pid, (size_t)n) < 0) {
            /* the pid in the file is a courtesy for humans; the lock is what counts */
        }
        *fd = f;
        return 0;
    }
    if (errno == EACCES || errno == EAGAIN) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        *holder = fcntl(f, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? (long)fl.l_pid : 0;
        close(f);
        return 1;
    }
    snprintf(err, errlen, "lock %s: %s", path, strerror(errno));
    close(f);
    return -1;
}

int output_open(const struct sched_paths *p, const char *job, time_t start, char *path, size_t len)
{
    char dir[PATH_MAX], stamp[32];
    struct tm tm;
    int fd;
    snprintf(dir, sizeof dir, "%s/output/%s", p->state_dir, job);
    if (make_dirs(dir))
        return -1;
    gmtime_r(&start, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    /* Two runs within one second (a --once beside the scheduler): -2, -3, ... */
    for (int i = 1; i < 100; i++) {
        if (i == 1)
            snprintf(path, len, "%s/%s.log", dir, stamp);
        else
            snprintf(path, len, "%s/%s-%d.log", dir, stamp, i);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int journal_file(const struct sched_paths *p, const struct job *j, char *buf, size_t len)
{
    char dir[PATH_MAX];
    if (j->journal == 0)
        return 0;
    if (j->journal_path) {
        snprintf(buf, len, "%s", j->journal_path);
        return 1;
    }
    snprintf(dir, sizeof dir, "%s/journal", p->state_dir);
    if (make_dirs(dir))
        return -1;
    snprintf(buf, len, "%s/%s.jsonl", dir, j->name);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void output_prune(const struct sched_paths *p, const char *job, int keep)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *d;
    snprintf(dir, sizeof dir, "%s/output/%s", p->state_dir, job);
    if (!(d = opendir(dir)))
        return;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".log"))
            continue;
        if (n == cap) {
            char **more = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *names);
            if (!more)
                break;
            names = more;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name); /* UTC stamps: name order is time order */
    for (size_t i = 0; i < n; i++) {
        if (i + (size_t)keep < n) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            unlink(path);
        }
        free(names[i]);
    }
    free(names);
}

const char *outcome_of(int status, int *exit_code, int *sig)
{
    *exit_code = -1;
    *sig = 0;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return "crashed";
    }
    *exit_code = WEXITSTATUS(status);
    switch (*exit_code) {
    case EXIT_OK: return "ok";
    case EXIT_USAGE:
    case EXIT_CONFIG: return "config";
    case EXIT_TIME_LIMIT: return "timeout";
    case EXIT_MEMORY_LIMIT: return "memory";
    case 6: return "unknown"; /* calls of unknown outcome (the safety issue's exit code) */
    case EXIT_SIGINT:
    case EXIT_SIGTERM: return "killed";
    default: return "error";
    }
}

/* Pushes the last TAIL_LINES lines of the file at path as a list ([-0, +1]). */
static void push_tail(lua_State *L, const char *path)
{
    char buf[4096];
    size_t n = 0;
    int count = 0;
    FILE *f = path ? fopen(path, "rb") : NULL;
    lua_newtable(L);
    json_mark_array(L, -1);
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)sizeof buf - 1)
            fseek(f, size - (long)(sizeof buf - 1), SEEK_SET);
        else
            rewind(f);
        n = fread(buf, 1, sizeof buf - 1, f);
    }
    fclose(f);
    buf[n] = 0;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    /* Back from the end to the start of the TAIL_LINES-th line. */
    size_t from = n;
    while (from > 0 && count < TAIL_LINES) {
        from--;
        if (buf[from] == '\n' && ++count == TAIL_LINES) {
            from++;
            break;
        }
    }
    for (int i = 1; from < n || (from == n && i == 1 && n > 0); i++) {
        size_t end = from + strcspn(buf + from, "\n");
        lua_pushlstring(L, buf + from, end - from);
        lua_rawseti(L, -2, i);
        from = end + 1;
        if (end >= n)
            break;
    }
}

static void set_time(lua_State *L, const char *key, time_t t)
{
    char buf[32];
    if (t) {
        iso_utc(t, buf, sizeof buf);
        lua_pushstring(L, buf);
    } else {
        json_push_null(L);
    }
    lua_setfield(L, -2, key);
}

/* [-0, +0] t.key = v, or null, on the table on top. */
static void set_text(lua_State *L, const char *key, const char *v)
{
    if (v)
        lua_pushstring(L, v);
    else
        json_push_null(L);
    lua_setfield(L, -2, key);
}

/* Under lua_pcall: builds the record table and encodes it; returns a malloc'd string. */
static int encode_record(lua_State *L)
{
    const struct record *r = lua_touserdata(L, 1);
    char err[256], *text;
    size_t len;
    lua_createtable(L, 0, 12);
    lua_pushstring(L, r->job);
    lua_setfield(L, -2, "job");
    lua_pushstring(L, r->outcome);
    lua_setfield(L, -2, "outcome");
    if (r->exit_code >= 0)
        lua_pushinteger(L, r->exit_code);
    else
        json_push_null(L);
    lua_setfield(L, -2, "exit_code");
    if (r->signal) {
        lua_pushinteger(L, r->signal);
        lua_setfield(L, -2, "signal");
    }
    set_time(L, "scheduled", r->scheduled);
    set_time(L, "start", r->start);
    set_time(L, "end", r->end);
    set_text(L, "output", r->output);
    push_tail(L, r->output);
    lua_setfield(L, -2, "output_tail");
    set_text(L, "journal", r->journal);
    if (r->pid) {
        lua_pushinteger(L, r->pid);
        lua_setfield(L, -2, "pid");
    }
    if (r->run_id) {
        lua_pushstring(L, r->run_id);
        lua_setfield(L, -2, "run_id");
    }
    text = json_encode(L, -1, &len, err, sizeof err);
    if (!text)
        return luaL_error(L, "%s", err);
    lua_pushlightuserdata(L, text);
    lua_pushinteger(L, (lua_Integer)len);
    return 2;
}

char *record_json(lua_State *L, const struct record *r)
{
    char *out = NULL;
    int top = lua_gettop(L);
    lua_pushcfunction(L, encode_record);
    lua_pushlightuserdata(L, (void *)r);
    if (lua_pcall(L, 1, 2, 0) == LUA_OK) {
        char *text = lua_touserdata(L, -2);
        size_t len = (size_t)lua_tointeger(L, -1);
        if ((out = malloc(len + 1))) {
            memcpy(out, text, len);
            out[len] = 0;
        }
        json_free(L, text, len);
    }
    lua_settop(L, top);
    return out;
}
