/* Runs one script from start to exit code. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "config.h"
#include "embedded.h"
#include "errors.h"
#include "host.h"
#include "guard.h"
#include "loop.h"
#include "runner.h"
#include "sandbox.h"

struct outcome {
    int finished, status;
    int code; /* exit code returned by a host chunk (ping), or -1 */
};

/* Leaves on S the message for a failed main task: "file:line: message" and a traceback. */
static void main_done(struct loop *lp, struct task *t, int status, void *ud)
{
    struct outcome *o = ud;
    lua_State *S = loop_main(lp), *co = t->co;
    char where[512] = "";
    lua_Debug ar;
    o->finished = 1;
    o->status = status;
    if (status == LUA_OK) {
        if (lua_gettop(co) > 0 && lua_isinteger(co, 1))
            o->code = (int)lua_tointeger(co, 1);
        return;
    }
    if (lua_type(co, -1) != LUA_TSTRING) {
        /* An error table carries no position: take the innermost Lua frame's. */
        for (int level = 0; lua_getstack(co, level, &ar); level++) {
            lua_getinfo(co, "Sl", &ar);
            if (ar.currentline > 0) {
                snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.currentline);
                break;
            }
        }
    }
    err_tostring(co, -1);
    lua_pushfstring(co, "%s%s", where, lua_tostring(co, -1));
    luaL_traceback(S, co, lua_tostring(co, -1), 0);
}

static int setup(lua_State *L)
{
    return sandbox_open(L);
}

static void banner(const struct config *cfg)
{
    if (cfg->quiet)
        return;
    if (cfg->simulator)
        fprintf(stderr, "ecaphost: talking to the built-in simulator at %s\n", cfg->base_url);
    else if (cfg->environment)
        fprintf(stderr, "ecaphost: talking to %s (%s)\n", cfg->base_url, cfg->environment);
    else
        fprintf(stderr, "ecaphost: talking to %s\n", cfg->base_url);
}

/* Runs a script file, or (source != NULL) one of the host's own chunks, whose integer return
 * value is the exit code. */
static int run_chunk(struct config *cfg, const char *path, const char *source, int argc, char **argv)
{
    struct limits lim;
    struct host h = {0};
    struct outcome o = {0, 0, -1};
    struct loop *lp = NULL;
    lua_State *L;
    char err[256], *dir_copy = strdup(source ? "." : path);
    int code = EXIT_SCRIPT;

    if (!dir_copy) {
        fprintf(stderr, "ecaphost: out of memory\n");
        return EXIT_SCRIPT;
    }
    limits_init(&lim, cfg->max_memory, cfg->timeout_s);
    L = lua_newstate(limits_alloc, &lim);
    if (!L) {
        fprintf(stderr, "ecaphost: cannot create a Lua state (out of memory)\n");
        free(dir_copy);
        return EXIT_SCRIPT;
    }
    limits_hook(L);
    h.cfg = cfg;
    h.script_dir = dirname(dir_copy);
    host_set(L, &h);
    if (!(lp = loop_new(L, cfg, &lim, err, sizeof err))) {
        fprintf(stderr, "ecaphost: %s\n", err);
        goto done;
    }
    h.loop = lp;
    lua_pushcfunction(L, setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "ecaphost: cannot set up the sandbox: %s\n", lua_tostring(L, -1));
        goto done;
    }
    if ((source ? sandbox_loadbuffer(L, source, strlen(source), path) : sandbox_loadfile(L, path)) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "ecaphost: %s\n", msg ? msg : "cannot load the script");
        code = (msg && strstr(msg, "cannot open")) ? EXIT_USAGE : EXIT_SCRIPT;
        goto done;
    }
    /* arg: [0] = script, [1..] = its arguments; they are also the chunk's `...`. */
    sandbox_push_env(L);
    lua_getfield(L, -1, "arg");
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pop(L, 2);
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (watchdog_start(&lim)) {
        fprintf(stderr, "ecaphost: cannot start the watchdog thread\n");
        goto done;
    }
    banner(cfg);
    task_spawn(lp, L, argc, NULL, NULL, main_done, &o);
    loop_run(lp, &o.finished);
    if (lim.stop != STOP_NONE) {
        fprintf(stderr, "ecaphost: %s: %s\n", path, limits_message(&lim));
        code = limits_exit_code((enum stop_reason)lim.stop);
    } else if (o.status != LUA_OK) {
        fprintf(stderr, "ecaphost: %s\n", lua_tostring(L, -1));
        code = EXIT_SCRIPT;
    } else {
        code = source && o.code >= 0 ? o.code : EXIT_OK;
    }
done:
    watchdog_stop();
    lua_close(L);
    loop_free(lp);
    free(dir_copy);
    return code;
}

int run_script(struct config *cfg, const char *path, int argc, char **argv)
{
    return run_chunk(cfg, path, NULL, argc, argv);
}

int run_ping(struct config *cfg)
{
    const struct embedded_file *f = embedded_find("lua/ping.lua");
    int quiet = cfg->quiet;
    cfg->quiet = 1; /* ping prints the target itself */
    if (!f) {
        fprintf(stderr, "ecaphost: ping script missing from the build\n");
        return EXIT_SCRIPT;
    }
    {
        int rc = run_chunk(cfg, "=ping", f->data, 0, NULL);
        cfg->quiet = quiet;
        return rc;
    }
}
