/* Reading and checking the schedule file (see jobs.h). */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "jobs.h"
#include "lib/limits.h"

#define FILE_MEMORY (16u << 20)   /* bytes the schedule file may use */
#define HOOK_EVERY 10000          /* instructions between two hook calls */
#define HOOK_CALLS 1000           /* 10 million instructions in all */

/* Where a message is about: "jobs.lua: job \"x\": " (or "job 3" before the name is known). */
struct ctx {
    const struct schedule *s;
    char prefix[512];
    char *err;
    size_t errlen;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    size_t n = (size_t)snprintf(c->err, c->errlen, "%s", c->prefix);
    va_start(ap, fmt);
    if (n < c->errlen)
        vsnprintf(c->err + n, c->errlen - n, fmt, ap);
    va_end(ap);
    return -1;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
}

static void job_free(struct job *j)
{
    free(j->name);
    free(j->script);
    free_list(j->args, j->n_args);
    free(j->args);
    free(j->cron_text);
    free(j->tz);
    free_list(j->allow_read, j->n_read);
    free_list(j->allow_write, j->n_write);
    free(j->profile);
    free(j->journal_path);
    free(j->on_failure);
    free_list(j->on_failure_write, j->n_on_failure_write);
}

void schedule_free(struct schedule *s)
{
    for (int i = 0; i < s->n_jobs; i++)
        job_free(&s->jobs[i]);
    free(s->jobs);
    free(s->path);
    free(s->abs_path);
    free(s->dir);
    memset(s, 0, sizeof *s);
}

struct job *schedule_find(const struct schedule *s, const char *name)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (strcmp(s->jobs[i].name, name) == 0)
            return &s->jobs[i];
    return NULL;
}

void job_describe(const struct job *j, char *buf, size_t len)
{
    if (j->every_s) {
        long v = j->every_s;
        size_t n = (size_t)snprintf(buf, len, "every ");
        static const char units[] = "dhms";
        static const long scale[] = {86400, 3600, 60, 1};
        for (int i = 0; i < 4 && n < len; i++)
            if (v >= scale[i]) {
                n += (size_t)snprintf(buf + n, len - n, "%ld%c", v / scale[i], units[i]);
                v %= scale[i];
            }
    } else {
        snprintf(buf, len, "cron %s%s%s%s", j->cron_text, j->tz ? " (" : "", j->tz ? j->tz : "", j->tz ? ")" : "");
    }
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int job_same_timing(const struct job *a, const struct job *b)
{
    return a->every_s == b->every_s && same_str(a->cron_text, b->cron_text) && same_str(a->tz, b->tz);
}

/* ---- the bare state ---------------------------------------------------------------------- */

static void count_hook(lua_State *L, lua_Debug *ar)
{
    int *calls;
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, "ecap.sched.budget");
    calls = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (calls && ++*calls > HOOK_CALLS)
        luaL_error(L, "the schedule file runs too long (more than %d million instructions)",
                   HOOK_EVERY * HOOK_CALLS / 1000000);
}

/* base, string, table, math, utf8; without the functions that reach files, load code or
 * print; without string patterns (one find/match/gsub call can backtrack for minutes inside
 * C, where the instruction count never looks); and without setmetatable: a finalizer (__gc)
 * would run later, during the checks or at lua_close, where Lua turns debug hooks off. */
static int open_bare(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    static const char *const removed[] = {"dofile", "loadfile", "load", "require", "print", "collectgarbage",
                                          "setmetatable", NULL};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    static const char *const no_patterns[] = {"find", "match", "gmatch", "gsub", NULL};
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    for (int i = 0; no_patterns[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, no_patterns[i]);
    }
    lua_pop(L, 1);
    return 0;
}

/* ---- fields ------------------------------------------------------------------------------ */

/* dir + "/" + p unless p is absolute. */
static char *resolve(const struct schedule *s, const char *p)
{
    size_t n;
    char *out;
    if (p[0] == '/')
        return strdup(p);
    n = strlen(s->dir) + strlen(p) + 2;
    if ((out = malloc(n)))
        snprintf(out, n, "%s/%s", s->dir, p);
    return out;
}

/* Pushes t[key] (raw: a metatable of the file's cannot run code here). Returns its type. */
static int field(lua_State *L, int t, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, t);
}

/* t[key] as a non-empty string; absent: *out = NULL (an error when required). */
static int get_string(struct ctx *c, lua_State *L, int t, const char *key, int required, char **out)
{
    int type = field(L, t, key);
    *out = NULL;
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return required ? fail(c, "%s missing", key) : 0;
    }
    if (type != LUA_TSTRING || lua_rawlen(L, -1) == 0 || strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1)) {
        lua_pop(L, 1);
        return fail(c, "%s must be a non-empty string (got %s)", key, type == LUA_TSTRING ? "''" : lua_typename(L, type));
    }
    *out = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return *out ? 0 : fail(c, "out of memory");
}

static int get_bool(struct ctx *c, lua_State *L, int t, const char *key, int *out)
{
    int type = field(L, t, key);
    if (type == LUA_TBOOLEAN)
        *out = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNIL && type != LUA_TBOOLEAN)
        return fail(c, "%s must be true or false (got %s)", key, lua_typename(L, type));
    return 0;
}

/* journal = true / false, or a file (relative to the schedule file): where the run's call
 * journal goes instead of <state>/journal/<job>.jsonl. */
static int get_journal(struct ctx *c, lua_State *L, int t, struct job *j)
{
    char *path = NULL;
    int type = field(L, t, "journal");
    lua_pop(L, 1);
    if (type != LUA_TSTRING) {
        if (type == LUA_TNIL || type == LUA_TBOOLEAN)
            return get_bool(c, L, t, "journal", &j->journal);
        return fail(c, "journal must be true, false or a file (got %s)", lua_typename(L, type));
    }
    if (get_string(c, L, t, "journal", 0, &path))
        return -1;
    j->journal = 1;
    j->journal_path = resolve(c->s, path);
    free(path);
    return j->journal_path ? 0 : fail(c, "out of memory");
}

/* t[key]: seconds as a number or a duration string ("1h"). */
static int get_seconds(struct ctx *c, lua_State *L, int t, const char *key, double *out)
{
    int type = field(L, t, key);
    char err[256];
    long secs;
    if (type == LUA_TNUMBER) {
        double v = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (!(v > 0 && v <= 366.0 * 86400))
            return fail(c, "%s must be seconds from 1 to 366 days (got %g)", key, v);
        *out = v;
        return 0;
    }
    if (type == LUA_TSTRING) {
        int rc = every_parse(lua_tostring(L, -1), &secs, err, sizeof err);
        lua_pop(L, 1);
        if (rc)
            return fail(c, "%s: %s", key, err + strlen("every "));
        *out = (double)secs;
        return 0;
    }
    lua_pop(L, 1);
    return type == LUA_TNIL ? 0 : fail(c, "%s must be seconds or a duration such as \"1h\" (got %s)", key,
                                       lua_typename(L, type));
}

/* t[key]: a string or a list of strings, each resolved against the schedule's directory. */
static int get_dirs(struct ctx *c, lua_State *L, int t, const char *key, char **dirs, int *n)
{
    int type = field(L, t, key), top = lua_gettop(L);
    lua_Integer len;
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type == LUA_TSTRING) {
        lua_newtable(L);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    } else if (type != LUA_TTABLE) {
        lua_pop(L, 1);
        return fail(c, "%s must be a directory or a list of directories (got %s)", key, lua_typename(L, type));
    }
    len = (lua_Integer)lua_rawlen(L, -1);
    if (len > JOB_MAX_DIRS) {
        lua_settop(L, top - 1);
        return fail(c, "%s: at most %d directories", key, JOB_MAX_DIRS);
    }
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
            lua_settop(L, top - 1);
            return fail(c, "%s[%d] must be a non-empty string", key, (int)i);
        }
        if (!(dirs[*n] = resolve(c->s, lua_tostring(L, -1)))) {
            lua_settop(L, top - 1);
            return fail(c, "out of memory");
        }
        (*n)++;
        lua_pop(L, 1);
    }
    lua_settop(L, top - 1);
    return 0;
}

static int get_args(struct ctx *c, lua_State *L, int t, struct job *j)
{
    int type = field(L, t, "args");
    lua_Integer len;
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE) {
        lua_pop(L, 1);
        return fail(c, "args must be a list of strings (got %s)", lua_typename(L, type));
    }
    len = (lua_Integer)lua_rawlen(L, -1);
    if (len > 256) {
        lua_pop(L, 1);
        return fail(c, "args: at most 256 arguments");
    }
    if (len && !(j->args = calloc((size_t)len, sizeof *j->args))) {
        lua_pop(L, 1);
        return fail(c, "out of memory");
    }
    for (lua_Integer i = 1; i <= len; i++) {
        int at = lua_rawgeti(L, -1, i);
        if (at != LUA_TSTRING && at != LUA_TNUMBER) {
            lua_pop(L, 2);
            return fail(c, "args[%d] must be a string or a number (got %s)", (int)i, lua_typename(L, at));
        }
        j->args[j->n_args] = strdup(lua_tostring(L, -1)); /* a number becomes its text in place */
        lua_pop(L, 1);
        if (!j->args[j->n_args]) {
            lua_pop(L, 1);
            return fail(c, "out of memory");
        }
        j->n_args++;
    }
    lua_pop(L, 1);
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 && s[0] != '.' && s[0] != '-'
           && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int get_timing(struct ctx *c, lua_State *L, int t, struct job *j)
{
    char *every = NULL, err[256];
    int rc = 0;
    if (get_string(c, L, t, "every", 0, &every) || get_string(c, L, t, "cron", 0, &j->cron_text)
        || get_string(c, L, t, "tz", 0, &j->tz))
        rc = -1;
    else if (!every == !j->cron_text)
        rc = fail(c, every ? "give either every or cron, not both" : "every or cron missing (e.g. every = \"15m\")");
    else if (every && j->tz)
        rc = fail(c, "tz applies to cron, not to every");
    else if (every && every_parse(every, &j->every_s, err, sizeof err))
        rc = fail(c, "%s", err);
    else if (j->cron_text && cron_parse(j->cron_text, &j->cron, err, sizeof err))
        rc = fail(c, "%s", err);
    else if (j->tz && cron_check_zone(j->tz, err, sizeof err))
        rc = fail(c, "%s", err);
    else if (j->cron_text && cron_next(&j->cron, j->tz, time(NULL)) == (time_t)-1)
        rc = fail(c, "cron '%s' matches no date", j->cron_text);
    free(every);
    return rc;
}

/* on_failure = "notify.lua" or { script = "notify.lua", allow_write = "alerts" }. */
static int get_on_failure(struct ctx *c, lua_State *L, int t, struct job *j)
{
    int type = field(L, t, "on_failure"), rc = 0, top = lua_gettop(L);
    char *script = NULL;
    if (type == LUA_TNIL || type == LUA_TSTRING) {
        lua_pop(L, 1);
        if (get_string(c, L, t, "on_failure", 0, &script))
            return -1;
    } else if (type == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, top)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING
                || (strcmp(lua_tostring(L, -1), "script") && strcmp(lua_tostring(L, -1), "allow_write"))) {
                lua_settop(L, top - 1);
                return fail(c, "on_failure: unknown field %s (known: script, allow_write)",
                            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a name)");
            }
        }
        rc = get_string(c, L, top, "script", 1, &script)
             || get_dirs(c, L, top, "allow_write", j->on_failure_write, &j->n_on_failure_write);
        lua_settop(L, top - 1);
        if (rc) {
            free(script);
            return -1;
        }
    } else {
        lua_pop(L, 1);
        return fail(c, "on_failure must be a script path or { script = ..., allow_write = ... } (got %s)",
                    lua_typename(L, type));
    }
    if (script) {
        j->on_failure = resolve(c->s, script);
        free(script);
        if (!j->on_failure)
            return fail(c, "out of memory");
    }
    return 0;
}

static const char *const job_keys[] = {
    "name", "script", "every", "cron", "tz", "args", "timeout", "max_memory", "allow_read", "allow_write",
    "allow_destructive", "dry_run", "journal", "profile", "on_failure", NULL};

static int check_keys(struct ctx *c, lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int known = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; job_keys[i] && !known; i++)
                known = strcmp(job_keys[i], lua_tostring(L, -1)) == 0;
        if (!known) {
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
            fail(c, "unknown field %s (known: name, script, every, cron, tz, args, timeout, max_memory, "
                 "allow_read, allow_write, allow_destructive, dry_run, journal, profile, on_failure)", k);
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}

/* The script compiles (syntax only: nothing runs). */
static int compile(struct ctx *c, lua_State *L, const char *what, const char *path)
{
    int rc = luaL_loadfilex(L, path, "t");
    if (rc != LUA_OK) {
        fail(c, "%s: %s", what, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

/* The job table at t into j. */
static int read_job(struct ctx *c, lua_State *L, int t, int index, struct job *j)
{
    char *script = NULL, *name = NULL;
    int rc;
    snprintf(c->prefix, sizeof c->prefix, "%s: job %d: ", c->s->path, index);
    if (lua_type(L, t) != LUA_TTABLE)
        return fail(c, "must be a table { name = ..., script = ..., every = ... } (got %s)", luaL_typename(L, t));
    if (get_string(c, L, t, "name", 1, &name))
        return -1;
    j->name = name;
    if (!name_ok(name))
        return fail(c, "name '%s' must be 1-64 letters, digits, '.', '_' or '-' (it names files)", name);
    snprintf(c->prefix, sizeof c->prefix, "%s: job \"%s\": ", c->s->path, name);
    if (schedule_find(c->s, name))
        return fail(c, "name used by another job");
    j->timeout_s = JOB_DEFAULT_TIMEOUT;
    j->journal = -1;
    if (check_keys(c, L, t) || get_string(c, L, t, "script", 1, &script))
        return -1;
    j->script = resolve(c->s, script);
    free(script);
    if (!j->script)
        return fail(c, "out of memory");
    rc = get_timing(c, L, t, j) || get_args(c, L, t, j) || get_seconds(c, L, t, "timeout", &j->timeout_s)
         || get_dirs(c, L, t, "allow_read", j->allow_read, &j->n_read)
         || get_dirs(c, L, t, "allow_write", j->allow_write, &j->n_write)
         || get_bool(c, L, t, "allow_destructive", &j->allow_destructive) || get_bool(c, L, t, "dry_run", &j->dry_run)
         || get_journal(c, L, t, j) || get_string(c, L, t, "profile", 0, &j->profile)
         || get_on_failure(c, L, t, j);
    if (rc)
        return -1;
    if (field(L, t, "max_memory") != LUA_TNIL) {
        double mb = lua_tonumber(L, -1);
        int isnum = lua_type(L, -1) == LUA_TNUMBER;
        lua_pop(L, 1);
        if (!isnum || !(mb >= 0.25 && mb <= 1 << 20))
            return fail(c, "max_memory must be megabytes from 0.25 to 1048576");
        j->max_memory_mb = mb;
    } else {
        lua_pop(L, 1);
    }
    if (j->profile && !name_ok(j->profile))
        return fail(c, "profile '%s' is not a profile name", j->profile);
    if (compile(c, L, "script", j->script) || (j->on_failure && compile(c, L, "on_failure", j->on_failure)))
        return -1;
    return 0;
}

/* The value the file returned, at index v: a list of jobs, or { max_parallel =, jobs = }. */
static int read_schedule(struct ctx *c, lua_State *L, int v, struct schedule *s)
{
    int list = v;
    lua_Integer n;
    if (lua_type(L, v) != LUA_TTABLE)
        return fail(c, "must return a list of jobs or { max_parallel = N, jobs = { ... } } (got %s)",
                    luaL_typename(L, v));
    s->max_parallel = SCHED_DEFAULT_PARALLEL;
    if (field(L, v, "jobs") != LUA_TNIL) {
        list = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, v)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k || (strcmp(k, "jobs") && strcmp(k, "max_parallel")))
                return fail(c, "unknown top-level field %s (known: max_parallel, jobs)", k ? k : luaL_typename(L, -2));
            lua_pop(L, 1);
        }
        if (field(L, v, "max_parallel") != LUA_TNIL) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 256)
                return fail(c, "max_parallel must be a whole number from 1 to 256");
            s->max_parallel = (int)lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
        if (lua_type(L, list) != LUA_TTABLE)
            return fail(c, "jobs must be a list of jobs (got %s)", luaL_typename(L, list));
    } else {
        lua_pop(L, 1);
    }
    n = (lua_Integer)lua_rawlen(L, list);
    lua_pushnil(L);
    while (lua_next(L, list)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return fail(c, "the job list has a non-list key (each job is one { ... } entry of the list)");
        }
    }
    if (n == 0)
        return fail(c, "no jobs");
    if (n > 1000)
        return fail(c, "too many jobs (at most 1000)");
    if (!(s->jobs = calloc((size_t)n, sizeof *s->jobs)))
        return fail(c, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        int rc;
        lua_rawgeti(L, list, i);
        rc = read_job(c, L, lua_gettop(L), (int)i, &s->jobs[s->n_jobs]);
        s->n_jobs++; /* partly read: freed with the others */
        lua_pop(L, 1);
        if (rc)
            return -1;
    }
    return 0;
}

static int set_paths(struct ctx *c, struct schedule *s, const char *path)
{
    char *copy;
    if (!(s->path = strdup(path)))
        return fail(c, "out of memory");
    if (!(s->abs_path = realpath(path, NULL)))
        return fail(c, "%s", strerror(errno));
    if (!(copy = strdup(s->abs_path)))
        return fail(c, "out of memory");
    s->dir = strdup(dirname(copy));
    free(copy);
    return s->dir ? 0 : fail(c, "out of memory");
}

static int evaluate(lua_State *L)
{
    struct schedule *s = lua_touserdata(L, 1);
    int *budget = lua_newuserdatauv(L, sizeof(int), 0);
    *budget = 0;
    lua_setfield(L, LUA_REGISTRYINDEX, "ecap.sched.budget");
    open_bare(L);
    if (luaL_loadfilex(L, s->path, "t") != LUA_OK)
        return lua_error(L);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_call(L, 0, 1);
    lua_sethook(L, NULL, 0, 0);
    return 1;
}

int schedule_load(const char *path, struct schedule *s, char *err, size_t errlen)
{
    struct limits lim;
    struct ctx c = {s, "", err, errlen};
    lua_State *L;
    int rc = -1;
    memset(s, 0, sizeof *s);
    snprintf(c.prefix, sizeof c.prefix, "%s: ", path);
    if (set_paths(&c, s, path))
        goto out;
    limits_init(&lim, FILE_MEMORY, 0);
    if (!(L = lua_newstate(limits_alloc, &lim))) {
        fail(&c, "out of memory");
        goto out;
    }
    lua_pushcfunction(L, evaluate);
    lua_pushlightuserdata(L, s);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (lim.stop == STOP_MEMORY)
            fail(&c, "the schedule file uses more than %u MB", FILE_MEMORY >> 20);
        else if (m && strncmp(m, s->path, strlen(s->path)) == 0 && m[strlen(s->path)] == ':')
            snprintf(err, errlen, "%s", m); /* already "jobs.lua:3: ..." */
        else
            fail(&c, "%s", m ? m : "error (not a string)");
    } else {
        rc = read_schedule(&c, L, lua_gettop(L), s);
    }
    lua_close(L);
out:
    if (rc)
        schedule_free(s);
    return rc;
}
