/* The REPL: one session (run/runner.h) fed statement by statement, lua.c's rules for what a
 * statement is (an expression alone prints its values; an unfinished one continues on `>>`),
 * libedit for editing, history and completion on a terminal, plain lines otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include <editline/readline.h>

#include "lib/inspect.h"
#include "lib/log.h"
#include "repl.h"
#include "repl_private.h"
#include "run/exit_codes.h"
#include "run/host.h"
#include "run/runner.h"
#include "run/sandbox.h"

#define HISTORY_MAX 1000 /* entries kept in the history file */
#define CHUNKNAME "=stdin"

struct repl {
    struct run_session *s;
    lua_State *L;
    const struct run_options *cfg;
    int interactive;
    int failed;            /* some statement failed (the exit code when not on a terminal) */
    int quit_code;         /* >= 0: leave with this code (SIGTERM, SIGINT when piped) */
    char *history;         /* history file, or NULL */
    char *buf;             /* the statement being gathered */
    size_t len, cap;
};

/* ---- input ---------------------------------------------------------------------------------- */

static volatile sig_atomic_t prompt_sigint;

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_sigint = 1;
}

/* At the prompt Ctrl-C only clears the line: no SA_RESTART, so libedit's read fails with EINTR
 * and readline returns NULL with the flag set. The statement's own handler (run/guard.c) is
 * installed while it runs. */
static void prompt_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* The next line without its newline (malloc'ed), or NULL at the end of input. */
static char *read_line(struct repl *r, const char *prompt)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (r->interactive) {
        fflush(stdout);
        return readline(prompt);
    }
    if ((n = getline(&line, &cap, stdin)) < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = 0;
    return line;
}

static int append(struct repl *r, const char *line)
{
    size_t n = strlen(line), need = r->len + n + 2;
    if (need > r->cap) {
        char *nb = realloc(r->buf, need * 2);
        if (!nb)
            return -1;
        r->buf = nb;
        r->cap = need * 2;
    }
    if (r->len)
        r->buf[r->len++] = '\n';
    memcpy(r->buf + r->len, line, n + 1);
    r->len += n;
    return 0;
}

/* ---- history -------------------------------------------------------------------------------- */

/* mkdir -p of the directories above path (0700 for the ones made). */
static void make_parents(char *path)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            *p = '/';
            return;
        }
        *p = '/';
    }
}

/* $XDG_STATE_HOME/ecaphost/history, else ~/.local/state/ecaphost/history; NULL without a home. */
static char *history_path(void)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *p;
    size_t n;
    if (xdg && *xdg == '/') {
        n = strlen(xdg) + sizeof "/ecaphost/history";
        if ((p = malloc(n)))
            snprintf(p, n, "%s/ecaphost/history", xdg);
    } else if (home && *home) {
        n = strlen(home) + sizeof "/.local/state/ecaphost/history";
        if ((p = malloc(n)))
            snprintf(p, n, "%s/.local/state/ecaphost/history", home);
    } else {
        return NULL;
    }
    return p;
}

static void history_open(struct repl *r)
{
    int fd;
    using_history();
    stifle_history(HISTORY_MAX);
    if (!(r->history = history_path()))
        return;
    make_parents(r->history);
    /* created private; an existing file is made private too */
    if ((fd = open(r->history, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0)
        close(fd);
    chmod(r->history, 0600);
    read_history(r->history);
}

/* Saved after every statement: a statement that hangs and ends the process (the watchdog)
 * loses nothing. */
static void history_add(struct repl *r, const char *statement)
{
    if (!r->interactive || !*statement)
        return;
    add_history(statement);
    if (r->history) {
        write_history(r->history);
        history_truncate_file(r->history, HISTORY_MAX);
        chmod(r->history, 0600);
    }
}

/* ---- statements ----------------------------------------------------------------------------- */

static int incomplete(lua_State *L)
{
    static const char mark[] = "<eof>";
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return msg && n >= sizeof mark - 1 && strcmp(msg + n - (sizeof mark - 1), mark) == 0;
}

/* Compiles the statement: as `return <text>` first (an expression prints its values), else as
 * it is. Returns 0 with the function pushed, 1 when the text is unfinished (nothing pushed),
 * -1 with the syntax error pushed. Loading is protected (lua_load), so memory is no panic. */
static int compile(struct repl *r)
{
    lua_State *L = r->L;
    size_t n = r->len + sizeof "return ;";
    char *ret = malloc(n);
    int status;
    if (ret) {
        snprintf(ret, n, "return %s;", r->buf);
        status = sandbox_loadbuffer(L, ret, strlen(ret), CHUNKNAME);
        free(ret);
        if (status == LUA_OK)
            return 0;
        lua_pop(L, 1);
    }
    if (sandbox_loadbuffer(L, r->buf, r->len, CHUNKNAME) == LUA_OK)
        return 0;
    if (incomplete(L)) {
        lua_pop(L, 1);
        return 1;
    }
    return -1;
}

/* Under lua_pcall: (results table) -> each value through the printer, tab-separated. */
static int print_results(lua_State *L)
{
    struct inspect_opts o;
    lua_Integer n;
    inspect_defaults(&o);
    o.unwrap = sandbox_unproxy;
    lua_getfield(L, 1, "n");
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        const char *s;
        lua_rawgeti(L, 1, i);
        inspect_push(L, -1, &o);
        s = lua_tolstring(L, -1, &len);
        fwrite(s, 1, len, stdout);
        fputc(i < n ? '\t' : '\n', stdout);
        lua_pop(L, 2);
    }
    return 0;
}

/* Runs the function (and nargs arguments) on the stack as one statement; prints its results
 * when print is set. Records a failure; decides whether the session must end. */
static void run_statement(struct repl *r, int nargs, int print)
{
    int code = session_run(r->s, nargs);
    if (code == EXIT_OK) {
        if (print) {
            lua_pushcfunction(r->L, print_results);
            lua_insert(r->L, -2);
            if (lua_pcall(r->L, 1, 0, 0) != LUA_OK) {
                log_host("ERROR", "cannot print the result: %s", lua_tostring(r->L, -1));
                lua_pop(r->L, 1);
            }
        } else {
            lua_pop(r->L, 1);
        }
    } else {
        r->failed = 1;
        if (code == EXIT_SIGTERM || (code == EXIT_SIGINT && !r->interactive))
            r->quit_code = code;
    }
    fflush(stdout);
    fflush(stderr);
    if (r->interactive)
        prompt_signals(); /* the statement's guard restored the default */
}

/* The gathered statement: compiled, run, printed; or kept when unfinished. */
static void statement(struct repl *r, int at_end)
{
    int c = compile(r);
    if (c == 1 && !at_end)
        return;
    history_add(r, r->buf);
    if (c == 1) {
        log_host("ERROR", "stdin: unfinished statement at the end of the input");
        r->failed = 1;
    } else if (c < 0) {
        log_host("ERROR", "%s", lua_tostring(r->L, -1));
        lua_pop(r->L, 1);
        r->failed = 1;
    } else {
        run_statement(r, 0, 1);
    }
    r->len = 0;
    if (r->buf)
        r->buf[0] = 0;
}

/* .help, .exit: only at the start of a statement. Returns 1 when the line was one. */
static int command(struct repl *r, const char *line)
{
    size_t skip = strspn(line, " \t");
    /* a letter after the dot: ".5 + 1" is Lua */
    if (line[skip] != '.' || !((line[skip + 1] | 0x20) >= 'a' && (line[skip + 1] | 0x20) <= 'z'))
        return 0;
    if (strcmp(line + skip, ".exit") == 0) {
        r->quit_code = r->failed && !r->interactive ? EXIT_SCRIPT : EXIT_OK;
    } else if (strcmp(line + skip, ".help") == 0) {
        repl_help(r->cfg);
    } else {
        log_host("ERROR", "unknown command %s (.help, .exit)", line + skip);
        r->failed = 1;
    }
    return 1;
}

/* ---- start-up: -l MODULE, -i SCRIPT --------------------------------------------------------- */

/* -l MODULE: require(MODULE) into the global named by its last segment ("a.b" -> b). */
static void preload(struct repl *r, const char *module)
{
    static const char loader[] = "local name, global = ...; _ENV[global] = require(name)";
    const char *dot = strrchr(module, '.');
    if (sandbox_loadbuffer(r->L, loader, sizeof loader - 1, "=(-l)") != LUA_OK) {
        log_host("ERROR", "%s", lua_tostring(r->L, -1));
        lua_pop(r->L, 1);
        r->failed = 1;
        return;
    }
    lua_pushstring(r->L, module);
    lua_pushstring(r->L, dot ? dot + 1 : module);
    run_statement(r, 2, 0);
}

/* Under lua_pcall: (script, argc, argv) -> arg table set, the chunk and its arguments. */
static int prepare_script(lua_State *L)
{
    const char *path = lua_tostring(L, 1);
    int argc = (int)lua_tointeger(L, 2);
    char **argv = lua_touserdata(L, 3);
    lua_settop(L, 0);
    if (sandbox_loadfile(L, path) != LUA_OK)
        return lua_error(L);
    sandbox_push_env(L);
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "arg");
    lua_pop(L, 1);
    luaL_checkstack(L, argc, "too many arguments");
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return lua_gettop(L);
}

/* -i SCRIPT [ARGS...]: run first, its globals stay. */
static void run_script_first(struct repl *r, const char *path, int argc, char **argv)
{
    int top = lua_gettop(r->L);
    lua_pushcfunction(r->L, prepare_script);
    lua_pushstring(r->L, path);
    lua_pushinteger(r->L, argc);
    lua_pushlightuserdata(r->L, argv);
    if (lua_pcall(r->L, 3, LUA_MULTRET, 0) != LUA_OK) {
        log_host("ERROR", "%s", lua_tostring(r->L, -1));
        lua_settop(r->L, top);
        r->failed = 1;
        return;
    }
    run_statement(r, lua_gettop(r->L) - top - 1, 0);
}

/* ---- the session ---------------------------------------------------------------------------- */

static void loop(struct repl *r)
{
    char *line;
    for (;;) {
        if (r->quit_code >= 0)
            return;
        prompt_sigint = 0;
        line = read_line(r, r->len ? ">> " : "> ");
        if (!line) {
            if (r->interactive && prompt_sigint) {
                /* Ctrl-C at the prompt: the line (and an unfinished statement) is dropped */
                fputc('\n', stdout);
                r->len = 0;
                continue;
            }
            if (r->len)
                statement(r, 1);
            if (r->interactive)
                fputc('\n', stdout);
            return;
        }
        if ((r->len == 0 && command(r, line)) || (r->len == 0 && line[strspn(line, " \t")] == 0)) {
            free(line);
            continue;
        }
        if (append(r, line) != 0) {
            log_host("ERROR", "out of memory");
            free(line);
            r->quit_code = EXIT_SCRIPT;
            return;
        }
        free(line);
        statement(r, 0);
    }
}

/* -l MODULE (repeatable) and -i SCRIPT [ARGS...]; returns the index of SCRIPT (or argc). */
static int parse_args(int argc, char **argv, int *script)
{
    *script = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) {
            i++;
        } else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            *script = i + 1;
            return 0;
        } else {
            fprintf(stderr, "ecaphost: repl: unexpected argument %s (-l MODULE, -i SCRIPT [ARGS...])\n"
                            "(see ecaphost repl --help)\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

int repl_main(const struct run_options *cfg, int argc, char **argv)
{
    struct repl r;
    int script, code;
    if (parse_args(argc, argv, &script))
        return EXIT_USAGE;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.quit_code = -1;
    r.interactive = isatty(STDIN_FILENO);
    if (!(r.s = session_open(cfg, ".")))
        return EXIT_SCRIPT;
    r.L = session_state(r.s);
    if (r.interactive) {
        if (!cfg->quiet)
            log_plain("INFO", "ecaphost %s (%s): .help lists the bindings and commands; .exit or Ctrl-D quits",
                      ECAP_VERSION, LUA_RELEASE);
        rl_readline_name = "ecaphost";
        rl_catch_signals = 0; /* Ctrl-C at the prompt is ours (prompt_signals) */
        repl_completion_init(r.L);
        history_open(&r);
        prompt_signals();
    }
    for (int i = 0; i < (script >= 0 ? script - 1 : argc); i += 2)
        preload(&r, argv[i + 1]);
    if (script >= 0 && r.quit_code < 0)
        run_script_first(&r, argv[script], argc - script - 1, argv + script + 1);
    loop(&r);
    code = r.quit_code >= 0 ? r.quit_code : (!r.interactive && r.failed) ? EXIT_SCRIPT : EXIT_OK;
    session_close(r.s);
    free(r.history);
    free(r.buf);
    return code;
}
