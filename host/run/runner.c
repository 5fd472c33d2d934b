/* Runs one script from start to exit code. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "exit_codes.h"
#include "lib/embedded.h"
#include "lib/errors.h"
#include "lib/log.h"
#include "lib/text.h"
#include "host.h"
#include "guard.h"
#include "net/audit.h"
#include "net/ledger.h"
#include "net/loop.h"
#include "runner.h"
#include "sandbox.h"

struct outcome {
    int finished, status;
    int code;            /* exit code returned by a host chunk (ping), or -1 */
    int err_ref, tb_ref; /* the main task's error value and traceback, in the registry */
    int key_refused;     /* the error was an HTTP 401/403: exit 3, as ping */
    char where[512];     /* "file:line: " of the script's innermost frame, for error values
                          * other than strings and ecap errors (those carry their own) */
};

/* "chunk:123: ..." */
static int has_position(const char *msg)
{
    const char *colon = strchr(msg, ':');
    size_t digits;
    if (!colon || colon == msg)
        return 0;
    digits = strspn(colon + 1, "0123456789");
    return digits > 0 && colon[1 + digits] == ':';
}

/* An error table of kind "http" with status 401 or 403: the key was refused or lacks the
 * permission. Raw reads: the table is the host's (err_is), its fields plain values. */
static int key_refused(lua_State *L, int idx)
{
    int refused = 0;
    if (err_is(L, idx)) {
        idx = lua_absindex(L, idx);
        lua_pushliteral(L, "kind");
        lua_rawget(L, idx);
        lua_pushliteral(L, "status");
        lua_rawget(L, idx);
        refused = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "http") == 0 &&
                  lua_isinteger(L, -1) && (lua_tointeger(L, -1) == 401 || lua_tointeger(L, -1) == 403);
        lua_pop(L, 2);
    }
    return refused;
}

/* Keeps what the message of a failed main task needs. Only inspects the dead coroutine: the
 * error value's own __tostring runs later, protected (report_error). */
static void main_done(struct loop *lp, struct task *t, int status, void *ud)
{
    struct outcome *o = ud;
    lua_State *S = loop_main(lp), *co = t->co;
    o->finished = 1;
    o->status = status;
    if (status == LUA_OK) {
        if (lua_gettop(co) > 0 && lua_isinteger(co, 1))
            o->code = (int)lua_tointeger(co, 1);
        return;
    }
    o->key_refused = key_refused(co, -1);
    if (lua_type(co, -1) != LUA_TSTRING && !err_is(co, -1) && err_push_where(S, co)) {
        /* The script's own error table carries no position: take the script's frame's. */
        snprintf(o->where, sizeof o->where, "%s: ", lua_tostring(S, -1));
        lua_pop(S, 1);
    }
    /* error("message", 0) -- a string without a position -- is the script's own word to
     * the operator (a usage text, say): it is shown as it is, without a traceback. */
    if (lua_type(co, -1) == LUA_TSTRING && !has_position(lua_tostring(co, -1)))
        lua_pushliteral(S, "");
    else
        luaL_traceback(S, co, NULL, 0);
    o->tb_ref = luaL_ref(S, LUA_REGISTRYINDEX);
    lua_xmove(co, S, 1);
    o->err_ref = luaL_ref(S, LUA_REGISTRYINDEX);
}

/* Under lua_pcall: the main task on the event loop until it is done or the run stops. */
struct start {
    struct loop *lp;
    struct outcome *o;
    const char *path;
    int argc;
    char **argv;
    int journal_failed; /* the call journal could not be opened: a configuration error */
};

/* Under lua_pcall, with the chunk on the stack: `arg` ([0] = script, [1..] = its arguments,
 * which are also the chunk's `...`), then the main task on the event loop until it is done or
 * the run stops. */
static int drive(lua_State *L)
{
    struct start *st = lua_touserdata(L, 1);
    lua_remove(L, 1);
    sandbox_push_env(L);
    lua_getfield(L, -1, "arg");
    lua_pushstring(L, st->path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < st->argc; i++) {
        lua_pushstring(L, st->argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pop(L, 2);
    {
        char err[512];
        if (audit_start(L, st->lp, st->path, st->argc, st->argv, err, sizeof err)) {
            st->journal_failed = 1;
            return luaL_error(L, "%s", err);
        }
    }
    luaL_checkstack(L, st->argc, "too many arguments");
    for (int i = 0; i < st->argc; i++)
        lua_pushstring(L, st->argv[i]);
    task_spawn(st->lp, L, st->argc, NULL, NULL, main_done, st->o);
    loop_run(st->lp, &st->o->finished);
    return 0;
}

#define REPORT_MAX 4096 /* bytes of an error message shown; the rest is only counted */

/* Appends the text at idx escaped line by line: the newlines are the host's (a traceback's),
 * whatever is between them is escaped (text_escape). */
static void add_lines(luaL_Buffer *b, lua_State *L, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len), *end = s + len, *nl;
    for (; (nl = memchr(s, '\n', (size_t)(end - s))); s = nl + 1) {
        text_escape(b, s, (size_t)(nl - s), REPORT_MAX);
        luaL_addchar(b, '\n');
    }
    text_escape(b, s, (size_t)(end - s), REPORT_MAX);
}

/* Under lua_pcall: "file:line: message" + traceback, escaped and bounded: the message may be a
 * server's, and must not reach the terminal raw. The error's __tostring may be the script's
 * own and may fail or loop: hence protected, and under the time limit. [-0, +1] */
static int message(lua_State *L)
{
    struct outcome *o = lua_touserdata(L, 1);
    luaL_Buffer b;
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->err_ref);
    err_tostring(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->tb_ref);
    luaL_buffinit(L, &b);
    text_escape(&b, o->where, strlen(o->where), REPORT_MAX);
    text_escape(&b, lua_tostring(L, 3), lua_rawlen(L, 3), REPORT_MAX);
    if (lua_rawlen(L, 4) > 0) {
        luaL_addchar(&b, '\n');
        add_lines(&b, L, 4);
    }
    luaL_pushresult(&b);
    return 1;
}

/* Under lua_pcall: the strings at 1 and 2 escaped, the second bounded. [-0, +1] */
static int escaped(lua_State *L)
{
    luaL_Buffer b;
    size_t len;
    const char *s = lua_tolstring(L, 2, &len);
    luaL_buffinit(L, &b);
    text_escape(&b, lua_tostring(L, 1), lua_rawlen(L, 1), REPORT_MAX);
    if (s)
        text_escape(&b, s, len, REPORT_MAX);
    else
        luaL_addstring(&b, "(not a string)");
    luaL_pushresult(&b);
    return 1;
}

/* Prints "ecaphost: <prefix><the value at idx>", both escaped; pops nothing. */
static void print_escaped(lua_State *L, const char *prefix, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, escaped);
    lua_pushstring(L, prefix);
    lua_pushvalue(L, idx);
    log_host("ERROR", "%s",
             lua_pcall(L, 2, 1, 0) == LUA_OK ? lua_tostring(L, -1) : "(the message cannot be shown)");
    lua_pop(L, 1);
}

/* Under lua_pcall: everything that writes to the new state before the script runs. */
static int setup(lua_State *L)
{
    struct host *h = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return sandbox_open(L, h);
}

/* Errors outside any protected call should not happen (everything runs under lua_pcall);
 * should one, say so and exit with the limit's code when a limit caused it. */
static int panic(lua_State *L)
{
    void *ud;
    const char *msg = lua_tostring(L, -1);
    lua_getallocf(L, &ud);
    fprintf(stderr, "ecaphost: unprotected error: %s\n", msg ? msg : "(not a string)");
    fflush(NULL);
    _exit(((struct limits *)ud)->stop != STOP_NONE ? limits_exit_code((enum stop_reason)((struct limits *)ud)->stop)
                                                   : EXIT_SCRIPT);
}

static void banner(const struct run_options *cfg)
{
    if (cfg->quiet)
        return;
    if (cfg->simulator)
        log_host("INFO", "talking to the built-in simulator at %s", cfg->net.base_url);
    else if (cfg->environment)
        log_host("INFO", "talking to %s (%s)", cfg->net.base_url, cfg->environment);
    else
        log_host("INFO", "talking to %s", cfg->net.base_url);
}

/* The end-of-run summary of the call path: the mutating calls whose outcome is unknown (exit
 * code 6: it wins over 0 and 1; the limits and signals win over it). Returns the exit code. */
static int report_calls(const struct ledger *lg, int code)
{
    size_t n = ledger_unknown_count(lg);
    if (ledger_dry_total(lg) > 0) {
        char summary[1024];
        ledger_dry_summary(lg, summary, sizeof summary);
        log_plain("INFO", "dry-run: would send %s", summary);
    }
    if (ledger_skipped(lg) > 0)
        log_plain("INFO", "resume: %zu call%s skipped (done in the journal)", ledger_skipped(lg),
                  ledger_skipped(lg) == 1 ? "" : "s");
    if (n == 0)
        return code;
    log_host("WARN", "%zu mutating call%s ended with an unknown outcome (the server may have done %s; check "
             "before sending again):", n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
    for (size_t i = 0; i < n; i++)
        log_plain("WARN", "  %s", ledger_unknown(lg, i));
    return code == EXIT_OK || code == EXIT_SCRIPT ? EXIT_UNKNOWN_OUTCOME : code;
}

/* Source text to run instead of a file: `run -e`, `run -`, the host's own chunks. */
struct text {
    const char *s;
    size_t len;
    const char *chunkname; /* for messages from the Lua side ("=(command line)") */
    int host;              /* one of the host's chunks: its integer return value is the exit code */
};

/* Runs a script file, or (source != NULL) source text; path names it in messages and arg[0]. */
static int run_chunk(const struct run_options *cfg, const char *path, const struct text *source, int argc, char **argv)
{
    struct limits lim;
    struct host h = {0};
    struct outcome o = {0, 0, -1, LUA_NOREF, LUA_NOREF, 0, ""};
    struct start st;
    struct loop *lp = NULL;
    lua_State *L;
    char err[768], *dir_copy = strdup(source ? "." : path);
    int code = EXIT_SCRIPT, status, stop_before;

    if (!dir_copy) {
        log_host("ERROR", "out of memory");
        return EXIT_SCRIPT;
    }
    limits_init(&lim, cfg->max_memory, cfg->timeout_s);
    L = lua_newstate(limits_alloc, &lim);
    if (!L) {
        log_host("ERROR", "cannot create a Lua state (out of memory)");
        free(dir_copy);
        return EXIT_SCRIPT;
    }
    lua_atpanic(L, panic);
    limits_hook(L);
    h.opts = cfg;
    h.script_dir = dirname(dir_copy);
    if (!(lp = loop_new(L, &cfg->net, &lim, err, sizeof err))) {
        log_host("ERROR", "%s", err);
        goto done;
    }
    h.loop = lp;
    h.bindings.loop = lp;
    h.bindings.routes = cfg->routes;
    h.bindings.consent = &cfg->consent;
    h.bindings.upload = &cfg->upload;
    /* the --timeout clock runs from limits_init: the watchdog guards reading the script too */
    if (watchdog_start(&lim)) {
        log_host("ERROR", "cannot start the watchdog thread");
        goto done;
    }
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, &h);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        log_host("ERROR", "cannot set up the sandbox: %s", lua_tostring(L, -1));
        goto done;
    }
    status = source ? sandbox_loadbuffer(L, source->s, source->len, source->chunkname) : sandbox_loadfile(L, path);
    if (status != LUA_OK) {
        if (lim.stop != STOP_NONE) {
            log_host("ERROR", "%s: %s", path, limits_message(&lim));
            code = limits_exit_code((enum stop_reason)lim.stop);
        } else {
            print_escaped(L, "", -1);
            code = status == LUA_ERRFILE ? EXIT_USAGE : EXIT_SCRIPT;
        }
        goto done;
    }
    banner(cfg);
    st.lp = lp;
    st.o = &o;
    st.path = path;
    st.argc = argc;
    st.argv = argv;
    st.journal_failed = 0;
    lua_pushcfunction(L, drive);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &st);
    lua_insert(L, 2); /* drive(&st, chunk) */
    if (lua_pcall(L, 2, 0, 0) != LUA_OK && lim.stop == STOP_NONE) {
        /* Only the host's own C code runs here outside a task: memory, the journal, say. */
        snprintf(err, sizeof err, "%s: ", path);
        print_escaped(L, err, -1);
        if (st.journal_failed)
            code = EXIT_CONFIG;
        goto done;
    }
    if (lim.stop == STOP_NONE && o.status != LUA_OK) {
        lua_pushcfunction(L, message);
        lua_pushlightuserdata(L, &o);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK)
            log_host("ERROR", "%s", lua_tostring(L, -1));
        else if (lim.stop == STOP_NONE) {
            snprintf(err, sizeof err, "%sthe script raised an error value and its __tostring failed: ", o.where);
            print_escaped(L, err, -1);
        }
    }
    if (lim.stop != STOP_NONE) {
        log_host("ERROR", "%s: %s", path, limits_message(&lim));
        code = limits_exit_code((enum stop_reason)lim.stop);
    } else if (o.status != LUA_OK) {
        code = o.key_refused ? EXIT_CONFIG : EXIT_SCRIPT;
    } else {
        code = source && source->host && o.code >= 0 ? o.code : EXIT_OK;
    }
done:
    /* Finalizers run in lua_close without hooks: the watchdog still guards the deadline, and
     * a limit or a signal that comes while they run decides the exit code as any other. */
    stop_before = lim.stop;
    lua_close(L);
    if (stop_before == STOP_NONE && limits_poll(&lim) != STOP_NONE) {
        log_host("ERROR", "%s: %s", path, limits_message(&lim));
        code = limits_exit_code((enum stop_reason)lim.stop);
    }
    watchdog_stop();
    if (lp)
        code = report_calls(loop_ledger(lp), code);
    loop_free(lp);
    free(dir_copy);
    return code;
}

int run_script(const struct run_options *cfg, const char *path, int argc, char **argv)
{
    return run_chunk(cfg, path, NULL, argc, argv);
}

int run_ping(const struct run_options *cfg)
{
    const struct embedded_file *f = embedded_find(embedded_run, "run/lua/ping.lua");
    /* "=[...]": host code, which errors' where skips (lib/errors.h) */
    struct text t = {f ? f->data : NULL, f ? f->len : 0, "=[ping]", 1};
    struct run_options quiet = *cfg;
    quiet.quiet = 1; /* ping prints the target itself */
    if (!f) {
        log_host("ERROR", "ping script missing from the build");
        return EXIT_SCRIPT;
    }
    return run_chunk(&quiet, "ping", &t, 0, NULL);
}

int run_string(const struct run_options *cfg, const char *chunk, int argc, char **argv)
{
    struct text t = {chunk, strlen(chunk), "=(command line)", 0};
    return run_chunk(cfg, "-e", &t, argc, argv);
}

/* Reads all of f into a malloc'ed buffer of at most max bytes (0 = no bound). Returns it (NUL
 * terminated) with its length, or NULL with errno set (EFBIG past max). */
static char *read_all(FILE *f, size_t max, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL, *nb;
    for (;;) {
        size_t got;
        if (cap - n < 4097) {
            cap = cap ? cap * 2 : 65536;
            if (!(nb = realloc(buf, cap))) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (max && n > max) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int run_stdin(const struct run_options *cfg, int argc, char **argv)
{
    size_t len;
    struct text t = {NULL, 0, "=stdin", 0};
    char *src = read_all(stdin, cfg->max_memory, &len);
    int code;
    if (!src) {
        if (errno == EFBIG) {
            log_host("ERROR", "-: the script on stdin is larger than --max-memory");
            return EXIT_MEMORY_LIMIT;
        }
        log_host("ERROR", "-: cannot read the script from stdin: %s", strerror(errno));
        return EXIT_USAGE;
    }
    t.s = src;
    t.len = len;
    code = run_chunk(cfg, "-", &t, argc, argv);
    free(src);
    return code;
}

/* ---- sessions (the REPL) -------------------------------------------------------------------- */

struct run_session {
    struct limits lim;
    struct host h;
    struct loop *lp;
    lua_State *L;
};

/* A chunk's outcome: what main_done keeps, and the results of a chunk that returned. */
struct session_outcome {
    struct outcome o;
    int results_ref;
};

/* [-0, +0] on the loop's scratch stack: the results packed into {n=, ...} in the registry. */
static void session_done(struct loop *lp, struct task *t, int status, void *ud)
{
    struct session_outcome *so = ud;
    lua_State *S = loop_main(lp), *co = t->co;
    int n = lua_gettop(co);
    if (status == LUA_OK) {
        lua_createtable(S, n, 1);
        for (int i = 1; i <= n; i++) {
            lua_pushvalue(co, i);
            lua_xmove(co, S, 1);
            lua_rawseti(S, -2, i);
        }
        lua_pushinteger(S, n);
        lua_setfield(S, -2, "n");
        so->results_ref = luaL_ref(S, LUA_REGISTRYINDEX);
    }
    main_done(lp, t, status, &so->o);
}

/* Under lua_pcall: (outcome, loop, function, args...): the chunk as a task until it is done or
 * the session's statement stops. */
static int session_drive(lua_State *L)
{
    struct session_outcome *so = lua_touserdata(L, 1);
    struct loop *lp = lua_touserdata(L, 2);
    int nargs = lua_gettop(L) - 3;
    task_spawn(lp, L, nargs, NULL, NULL, session_done, so);
    loop_run(lp, &so->o.finished);
    return 0;
}

struct run_session *session_open(const struct run_options *cfg, const char *script_dir)
{
    struct run_session *s = calloc(1, sizeof *s);
    char err[256];
    if (s) {
        limits_init(&s->lim, cfg->max_memory, 0); /* no deadline: session_run sets one per chunk */
        s->L = lua_newstate(limits_alloc, &s->lim);
    }
    if (!s || !s->L) {
        log_host("ERROR", "cannot create a Lua state (out of memory)");
        free(s);
        return NULL;
    }
    lua_atpanic(s->L, panic);
    limits_hook(s->L);
    s->h.opts = cfg;
    s->h.script_dir = script_dir;
    if (!(s->lp = loop_new(s->L, &cfg->net, &s->lim, err, sizeof err))) {
        log_host("ERROR", "%s", err);
        session_close(s);
        return NULL;
    }
    s->h.loop = s->lp;
    s->h.bindings.loop = s->lp;
    s->h.bindings.routes = cfg->routes;
    s->h.bindings.consent = &cfg->consent;
    s->h.bindings.upload = &cfg->upload;
    lua_pushcfunction(s->L, setup);
    lua_pushlightuserdata(s->L, &s->h);
    if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
        log_host("ERROR", "cannot set up the sandbox: %s", lua_tostring(s->L, -1));
        session_close(s);
        return NULL;
    }
    banner(cfg);
    return s;
}

lua_State *session_state(struct run_session *s)
{
    return s->L;
}

void session_close(struct run_session *s)
{
    if (!s)
        return;
    if (s->L) {
        /* The script's finalizers run in lua_close, where hooks do not: the watchdog ends the
         * process if one does not end within 3 s (plus its grace). */
        int guarded;
        s->lim.stop = STOP_NONE;
        s->lim.deadline = now_monotonic() + 3.0;
        guarded = watchdog_start(&s->lim) == 0;
        lua_close(s->L);
        if (guarded)
            watchdog_stop();
    }
    loop_free(s->lp);
    free(s);
}

/* After a chunk: its leftovers dropped under a short deadline (their __close handlers are the
 * script's), then the stop cleared and the hook reset for the next chunk. */
static void session_settle(struct run_session *s)
{
    s->lim.stop = STOP_NONE;
    s->lim.deadline = now_monotonic() + 3.0;
    loop_cancel(s->lp);
    s->lim.stop = STOP_NONE;
    s->lim.deadline = 0;
    limits_hook(s->L);
}

int session_run(struct run_session *s, int nargs)
{
    lua_State *L = s->L;
    struct session_outcome so = {{.code = -1, .err_ref = LUA_NOREF, .tb_ref = LUA_NOREF}, LUA_NOREF};
    int base = lua_gettop(L) - nargs - 1, code = EXIT_OK, stop;
    s->lim.stop = STOP_NONE;
    s->lim.deadline = s->h.opts->timeout_s > 0 ? now_monotonic() + s->h.opts->timeout_s : 0;
    if (watchdog_start(&s->lim)) {
        log_host("ERROR", "cannot start the watchdog thread");
        lua_settop(L, base);
        return EXIT_SCRIPT;
    }
    lua_pushcfunction(L, session_drive);
    lua_pushlightuserdata(L, &so);
    lua_pushlightuserdata(L, s->lp);
    lua_rotate(L, base + 1, 3); /* session_drive(&so, lp, function, args...) */
    if (lua_pcall(L, nargs + 3, 0, 0) != LUA_OK) {
        if (s->lim.stop == STOP_NONE) {
            log_host("ERROR", "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
            code = EXIT_SCRIPT;
        }
        lua_pop(L, 1);
    }
    if (s->lim.stop == STOP_NONE && so.o.finished && so.o.status != LUA_OK) {
        lua_pushcfunction(L, message);
        lua_pushlightuserdata(L, &so.o);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK)
            log_host("ERROR", "%s", lua_tostring(L, -1));
        else if (s->lim.stop == STOP_NONE)
            log_host("ERROR", "%sthe script raised an error value (and its __tostring failed)", so.o.where);
        lua_pop(L, 1);
        code = EXIT_SCRIPT;
    }
    stop = s->lim.stop;
    if (stop != STOP_NONE) {
        log_host("ERROR", "%s", limits_message(&s->lim));
        code = limits_exit_code((enum stop_reason)stop);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, so.o.err_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, so.o.tb_ref);
    session_settle(s);
    watchdog_stop();
    if (code == EXIT_OK && so.results_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, so.results_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, so.results_ref);
        return EXIT_OK;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, so.results_ref);
    return code == EXIT_OK ? EXIT_SCRIPT : code;
}
