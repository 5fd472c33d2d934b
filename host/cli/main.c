/* ecaphost: command line. Host options come before the script; everything after the
 * script's path belongs to the script, as with `lua`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>

#include "config.h"
#include "routes.h"
#include "repl/repl.h"
#include "run/runner.h"
#include "sim/sim.h"

#define CONNECTION_OPTIONS \
    "Connection:\n" \
    "  --base-url URL          scheme, host and port of the API (e.g. https://app.energycap.com)\n" \
    "  --environment NAME      us-east | us-west | eu | fedramp | implement\n" \
    "  --api-key-file FILE     read the API key from FILE (mode 600); else $ECAP_API_KEY\n" \
    "  --config FILE           config file (default $ECAP_CONFIG, $XDG_CONFIG_HOME/ecaphost/config)\n" \
    "  --cacert FILE           CA bundle for a private CA\n" \
    "  --http-timeout S        total time of one request (default 120)\n" \
    "  --connect-timeout S     time to connect (default 15)\n" \
    "  --insecure-http         allow plain http:// to a non-loopback host\n" \
    "  --sim                   start a private built-in simulator and talk to it (no key needed)\n" \
    "  --max-in-flight N       requests in flight at once, across the whole run (default 64)\n" \
    "  --rate N                at most N requests per second (default unlimited)\n"

#define SANDBOX_OPTIONS \
    "Sandbox:\n" \
    "  --max-memory MB         memory limit of the script (default 512)\n" \
    "  --timeout S             wall-clock limit of the run (default none)\n" \
    "  --lib DIR               let require() load Lua modules from DIR (repeatable)\n" \
    "  --allow-read DIR        let fs/csv read files under DIR (repeatable)\n" \
    "  --allow-write DIR       let fs write files under DIR (repeatable; implies read)\n" \
    "  --allow-destructive     allow destructive operations without confirm (deleteBills=true,\n" \
    "                          a bulk update with empty filters)\n" \
    "  -q, --quiet             no banner, no progress, no log.info\n"

#define EXIT_CODES \
    "Exit codes: 0 success, 1 script error, 2 usage error, 3 configuration error,\n" \
    "            4 time limit, 5 memory limit, 130 SIGINT, 143 SIGTERM.\n"

static const char usage[] =
    "usage: ecaphost run [options] SCRIPT [ARGS...]   run a Lua workflow script\n"
    "       ecaphost run [options] -e CHUNK [ARGS...] run the Lua text CHUNK\n"
    "       ecaphost run [options] - [ARGS...]        run the script read from stdin\n"
    "       ecaphost repl [options] [-l MOD] [-i SCRIPT [ARGS...]]  interactive session\n"
    "       ecaphost ping [options]                   check the API key and the connection\n"
    "       ecaphost sim [--port N] [options]         serve the built-in EnergyCAP simulator\n"
    "       ecaphost routes [--json] [--config FILE]  list the bindings, their routes and sources\n"
    "       ecaphost --help | --version               (ecaphost COMMAND --help: its options)\n"
    "\n" CONNECTION_OPTIONS "\n" SANDBOX_OPTIONS "\n" EXIT_CODES;

static const char usage_run[] =
    "usage: ecaphost run [options] SCRIPT [ARGS...]   run a Lua workflow script\n"
    "       ecaphost run [options] -e CHUNK [ARGS...] run the Lua text CHUNK (arg[0] is -e)\n"
    "       ecaphost run [options] - [ARGS...]        run the script read from stdin (arg[0] is -)\n"
    "Options come before the script; what follows it is the script's (arg[1..], ...).\n"
    "With -e and -, require() looks in the working directory and the --lib directories.\n"
    "\n" CONNECTION_OPTIONS "\n" SANDBOX_OPTIONS "\n" EXIT_CODES;

static const char usage_ping[] =
    "usage: ecaphost ping [options]\n"
    "One GET to check the API key and the connection: prints the target, the status and the\n"
    "latency. Exit 0 when the key works, 3 when it is refused or missing, 1 on a network error.\n"
    "\n" CONNECTION_OPTIONS;

static const char usage_repl[] =
    "usage: ecaphost repl [options] [-l MODULE]... [-i SCRIPT [ARGS...]]\n"
    "An interactive Lua session in the sandbox of `run`, one state for the session. An expression\n"
    "prints its value(s); an unfinished statement continues on a >> prompt; Ctrl-C stops the\n"
    "running statement (or clears the line); Ctrl-D or .exit quits; .help lists the bindings.\n"
    "With stdin not a terminal: no prompts, each statement runs when complete, exit 1 if any\n"
    "failed. `ecaphost` alone on a terminal starts it too.\n"
    "  -l MODULE               require MODULE (from the working directory or --lib dirs) into\n"
    "                          a global of its name (a.b: b) first (repeatable)\n"
    "  -i SCRIPT [ARGS...]     run SCRIPT first, then stay in the session with its globals\n"
    "History: $XDG_STATE_HOME/ecaphost/history (else ~/.local/state/ecaphost/history).\n"
    "--timeout applies to each statement, --max-memory to the session.\n"
    "\n" CONNECTION_OPTIONS "\n" SANDBOX_OPTIONS "\n" EXIT_CODES;

enum opt_kind { O_FLAG, O_VALUE };

struct opt {
    const char *name;
    enum opt_kind kind;
    int id;
};

enum {
    OPT_BASE_URL, OPT_ENV, OPT_KEY_FILE, OPT_CONFIG, OPT_CACERT, OPT_HTTP_TIMEOUT, OPT_CONNECT_TIMEOUT,
    OPT_INSECURE, OPT_SIM, OPT_MAX_IN_FLIGHT, OPT_RATE, OPT_MAX_MEMORY, OPT_TIMEOUT, OPT_LIB,
    OPT_ALLOW_READ, OPT_ALLOW_WRITE, OPT_DESTRUCTIVE, OPT_QUIET, OPT_HELP,
};

static const struct opt opts[] = {
    {"--base-url", O_VALUE, OPT_BASE_URL},       {"--environment", O_VALUE, OPT_ENV},
    {"--api-key-file", O_VALUE, OPT_KEY_FILE},   {"--config", O_VALUE, OPT_CONFIG},
    {"--cacert", O_VALUE, OPT_CACERT},           {"--http-timeout", O_VALUE, OPT_HTTP_TIMEOUT},
    {"--connect-timeout", O_VALUE, OPT_CONNECT_TIMEOUT},
    {"--insecure-http", O_FLAG, OPT_INSECURE},   {"--sim", O_FLAG, OPT_SIM},
    {"--max-in-flight", O_VALUE, OPT_MAX_IN_FLIGHT}, {"--rate", O_VALUE, OPT_RATE},
    {"--max-memory", O_VALUE, OPT_MAX_MEMORY},   {"--timeout", O_VALUE, OPT_TIMEOUT},
    {"--lib", O_VALUE, OPT_LIB},                 {"--allow-read", O_VALUE, OPT_ALLOW_READ},
    {"--allow-write", O_VALUE, OPT_ALLOW_WRITE}, {"--allow-destructive", O_FLAG, OPT_DESTRUCTIVE},
    {"--quiet", O_FLAG, OPT_QUIET},              {"-q", O_FLAG, OPT_QUIET},
    {"--help", O_FLAG, OPT_HELP},                {"-h", O_FLAG, OPT_HELP},
};

struct cli {
    struct config cfg;
    const char *help;       /* the command's own usage text, printed by --help */
    int repl;               /* -l and -i end the host options (the REPL's own) */
    const char *config_file;
    int sim;
};

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "ecaphost: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(see ecaphost --help)\n");
    return EXIT_USAGE;
}

static int add_dir(char **dirs, int *n, const char *path, const char *opt)
{
    char *real;
    if (*n >= CONFIG_MAX_DIRS)
        return usage_error("too many %s directories%s", opt, "");
    if (!(real = realpath(path, NULL)))
        return usage_error("%s: %s", path, strerror(errno));
    dirs[(*n)++] = real;
    return 0;
}

static int positive(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == 0 && errno == 0 && *out > 0;
}

static int apply(struct cli *c, const struct opt *o, const char *v)
{
    struct config *cfg = &c->cfg;
    double d;
    switch (o->id) {
    case OPT_BASE_URL: return config_set(&cfg->base_url, v) ? EXIT_SCRIPT : 0;
    case OPT_ENV:
        if (!config_environment_url(v))
            return usage_error("unknown environment '%s'%s (us-east, us-west, eu, fedramp, implement)", v, "");
        return config_set(&cfg->environment, v) ? EXIT_SCRIPT : 0;
    case OPT_KEY_FILE:
        cfg->key_file_from_cli = 1;
        return config_set(&cfg->api_key_file, v) ? EXIT_SCRIPT : 0;
    case OPT_CONFIG: c->config_file = v; return 0;
    case OPT_CACERT: return config_set(&cfg->cacert, v) ? EXIT_SCRIPT : 0;
    case OPT_HTTP_TIMEOUT:
    case OPT_CONNECT_TIMEOUT:
        /* at least 1 ms: 0 would mean "no timeout" to curl */
        if (config_parse_seconds(v, &d) || d < 0.001 || d > 86400)
            return usage_error("%s needs seconds from 0.001 to 86400 (got '%s')", o->name, v);
        *(o->id == OPT_HTTP_TIMEOUT ? &cfg->http_timeout_ms : &cfg->connect_timeout_ms) = (long)(d * 1000 + 0.5);
        return 0;
    case OPT_TIMEOUT:
        if (config_parse_seconds(v, &d) || d <= 0)
            return usage_error("%s needs a positive number of seconds (got '%s')", o->name, v);
        cfg->timeout_s = d;
        return 0;
    case OPT_MAX_MEMORY:
        /* at least 256 KB (a Lua state needs some); 0 would mean "no limit" */
        if (!positive(v, &d) || d < 0.25 || d > 1 << 20)
            return usage_error("%s needs a size in MB from 0.25 to 1048576 (got '%s')", o->name, v);
        cfg->max_memory = (size_t)(d * 1024 * 1024);
        return 0;
    case OPT_MAX_IN_FLIGHT:
        if (!positive(v, &d) || d != (int)d || d > 1024)
            return usage_error("%s needs a whole number 1..1024 (got '%s')", o->name, v);
        cfg->max_in_flight = (int)d;
        return 0;
    case OPT_RATE: {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", v);
        if (strlen(buf) > 2 && strcmp(buf + strlen(buf) - 2, "/s") == 0)
            buf[strlen(buf) - 2] = 0;
        if (!positive(buf, &d))
            return usage_error("%s needs requests per second, e.g. 20 or 20/s (got '%s')", o->name, v);
        cfg->rate = d;
        return 0;
    }
    case OPT_LIB:
        if (cfg->n_lib_dirs >= CONFIG_MAX_DIRS)
            return usage_error("too many %s directories%s", o->name, "");
        cfg->lib_dirs[cfg->n_lib_dirs++] = v;
        return 0;
    case OPT_ALLOW_READ: return add_dir(cfg->read_dirs, &cfg->n_read_dirs, v, o->name);
    case OPT_ALLOW_WRITE: return add_dir(cfg->write_dirs, &cfg->n_write_dirs, v, o->name);
    case OPT_INSECURE: cfg->insecure_http = 1; return 0;
    case OPT_SIM: c->sim = 1; return 0;
    case OPT_DESTRUCTIVE: cfg->allow_destructive = 1; return 0;
    case OPT_QUIET: cfg->quiet = 1; return 0;
    case OPT_HELP: fputs(c->help ? c->help : usage, stdout); exit(EXIT_OK);
    }
    return 0;
}

/* Parses host options from argv[*i] on; stops at the first non-option. */
static int parse_options(struct cli *c, int argc, char **argv, int *i)
{
    for (; *i < argc; (*i)++) {
        const char *a = argv[*i], *val = NULL, *eq;
        size_t nlen;
        const struct opt *o = NULL;
        int rc;
        if (strcmp(a, "--") == 0) {
            (*i)++;
            return 0;
        }
        if (a[0] != '-' || a[1] == 0 || strcmp(a, "-e") == 0)
            return 0; /* the script: a path, "-" (stdin) or -e CHUNK */
        if (c->repl && (strcmp(a, "-l") == 0 || strcmp(a, "-i") == 0))
            return 0;
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0)
                o = &opts[k];
        if (!o)
            return usage_error("unknown option %s%s", a, "");
        if (o->kind == O_VALUE) {
            if (eq)
                val = eq + 1;
            else if (*i + 1 < argc)
                val = argv[++(*i)];
            else
                return usage_error("%s needs a value%s", o->name, "");
        } else if (eq) {
            return usage_error("%s takes no value%s", o->name, "");
        }
        if ((rc = apply(c, o, val)))
            return rc;
    }
    return 0;
}

/* Starts the private simulator of `run --sim`, and points the client at it. */
static struct sim *start_private_sim(struct config *cfg)
{
    struct sim_options so = {0};
    char err[256], url[64];
    struct sim *s;
    so.bind_addr = "127.0.0.1";
    if (!(s = sim_start(&so, err, sizeof err))) {
        fprintf(stderr, "ecaphost: cannot start the simulator: %s\n", err);
        return NULL;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sim_port(s));
    if (config_set(&cfg->base_url, url) || config_set(&cfg->api_key, "simulator")) {
        sim_stop(s);
        return NULL;
    }
    cfg->simulator = 1;
    return s;
}

enum command { CMD_RUN, CMD_PING, CMD_REPL };

/* What follows the host options: run's script (a path, -e CHUNK or -), ping's nothing, the
 * REPL's own -l/-i arguments. A usage error is reported here, before any config is read. */
static int check_rest(enum command cmd, int argc, char **argv, int i)
{
    if (cmd == CMD_RUN && i >= argc)
        return usage_error("run needs a script (a file, -e CHUNK or - for stdin)%s%s", "", "");
    if (cmd == CMD_RUN && strcmp(argv[i], "-e") == 0 && i + 1 >= argc)
        return usage_error("run -e needs a chunk of Lua text%s%s", "", "");
    if (cmd == CMD_PING && i < argc)
        return usage_error("unexpected argument %s%s", argv[i], "");
    return 0;
}

static int dispatch(enum command cmd, const struct run_options *ro, int argc, char **argv, int i)
{
    switch (cmd) {
    case CMD_PING: return run_ping(ro);
    case CMD_REPL: return repl_main(ro, argc - i, argv + i);
    case CMD_RUN: break;
    }
    if (strcmp(argv[i], "-e") == 0)
        return run_string(ro, argv[i + 1], argc - i - 2, argv + i + 2);
    if (strcmp(argv[i], "-") == 0)
        return run_stdin(ro, argc - i - 1, argv + i + 1);
    return run_script(ro, argv[i], argc - i - 1, argv + i + 1);
}

static int client_command(int argc, char **argv, int i, enum command cmd)
{
    static const char *const help[] = {usage_run, usage_ping, usage_repl};
    struct cli c;
    struct run_options ro;
    struct sim *sim = NULL;
    char err[512];
    int rc;
    memset(&c, 0, sizeof c);
    c.help = help[cmd];
    c.repl = cmd == CMD_REPL;
    config_defaults(&c.cfg);
    if ((rc = parse_options(&c, argc, argv, &i)) || (rc = check_rest(cmd, argc, argv, i)))
        goto out;
    if (config_load_file(&c.cfg, c.config_file, c.config_file != NULL, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (c.sim && !(sim = start_private_sim(&c.cfg))) {
        rc = EXIT_CONFIG;
        goto out;
    }
    if (config_finish(&c.cfg, !c.sim, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (config_run_options(&c.cfg, &ro, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    rc = dispatch(cmd, &ro, argc, argv, i);
out:
    if (sim)
        sim_stop(sim);
    config_free(&c.cfg);
    return rc;
}

/* `ecaphost routes [--json] [--config FILE]`: needs no key and no base URL. */
static int routes_command(int argc, char **argv, int i)
{
    struct config cfg;
    struct run_options ro;
    const char *config_file = NULL;
    char err[512];
    int json = 0, rc = EXIT_OK;
    config_defaults(&cfg);
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_file = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs("usage: ecaphost routes [--json] [--config FILE]\n"
                  "Lists every binding: Lua name, method, route, where the route comes from\n"
                  "(confirmed, inferred, or config FILE:LINE when overridden) and what it does.\n", stdout);
            goto out;
        } else {
            rc = usage_error("routes: unexpected argument %s%s", argv[i], "");
            goto out;
        }
    }
    if (config_load_file(&cfg, config_file, config_file != NULL, err, sizeof err)
        || config_run_options(&cfg, &ro, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    rc = routes_print(&cfg.route_table, json) ? EXIT_SCRIPT : EXIT_OK;
out:
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc < 2 ? "repl" : argv[1];
    int rc;
    if (argc < 2 && !isatty(STDIN_FILENO)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ecaphost %s (%s, %s)\n", ECAP_VERSION, LUA_RELEASE, curl_version());
        return EXIT_OK;
    }
    if (strcmp(cmd, "sim") == 0)
        return sim_main(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0)
        return routes_command(argc, argv, 2);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ecaphost: cannot initialise libcurl\n");
        return EXIT_SCRIPT;
    }
    if (strcmp(cmd, "run") == 0)
        rc = client_command(argc, argv, 2, CMD_RUN);
    else if (strcmp(cmd, "ping") == 0)
        rc = client_command(argc, argv, 2, CMD_PING);
    else if (strcmp(cmd, "repl") == 0)
        rc = client_command(argc, argv, argc < 2 ? 1 : 2, CMD_REPL);
    else if (strcmp(cmd, "schedule") == 0)
        rc = usage_error("'%s' is not available in this version yet%s", cmd, "");
    else
        rc = usage_error("unknown command '%s'%s", cmd, "");
    curl_global_cleanup();
    return rc;
}
