/* ecaphost: command line. Host options come before the script; everything after the
 * script's path belongs to the script, as with `lua`. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lua.h>

#include "config.h"
#include "journal_cmd.h"
#include "routes.h"
#include "lib/duration.h"
#include "run/runner.h"
#include "sim/sim.h"

static const char usage[] =
    "usage: ecaphost run [options] SCRIPT [ARGS...]   run a Lua workflow script\n"
    "       ecaphost ping [options]                   check the API key and the connection\n"
    "       ecaphost sim [--port N] [options]         serve the built-in EnergyCAP simulator\n"
    "       ecaphost routes [--json] [--config FILE]  list the bindings, their routes and sources\n"
    "       ecaphost journal [--json] FILE            summarise a call journal: per operation ok,\n"
    "                                                 failed, unknown...; the unknown calls listed\n"
    "                                                 (exit 1 if any; 3 unreadable or malformed)\n"
    "       ecaphost --help | --version\n"
    "\n"
    "Connection:\n"
    "  --base-url URL          scheme, host and port of the API (e.g. https://app.energycap.com)\n"
    "  --environment NAME      us-east | us-west | eu | fedramp | implement\n"
    "  --api-key-file FILE     read the API key from FILE (mode 600); else $ECAP_API_KEY\n"
    "  --api-key-fd N          read the API key from descriptor N (e.g. a pipe), then close it\n"
    "  --config FILE           config file (default $ECAP_CONFIG, $XDG_CONFIG_HOME/ecaphost/config)\n"
    "  --cacert FILE           CA bundle for a private CA\n"
    "  --http-timeout D        total time of one request (default 120 s)\n"
    "  --connect-timeout D     time to connect (default 15 s)\n"
    "  --insecure-http         allow plain http:// to a non-loopback host\n"
    "  --sim                   start a private built-in simulator and talk to it (no key needed)\n"
    "  --max-in-flight N       requests in flight at once, across the whole run (default 64)\n"
    "  --rate N[/s|/min]       at most N requests per second (or minute; default unlimited)\n"
    "\n"
    "Sandbox:\n"
    "  --max-memory MB         memory limit of the script (default 512)\n"
    "  --timeout D             wall-clock limit of the run (default none)\n"
    "  --lib DIR               let require() load Lua modules from DIR (repeatable)\n"
    "  --allow-read DIR        let fs/csv read files under DIR (repeatable)\n"
    "  --allow-write DIR       let fs write files under DIR (repeatable; implies read)\n"
    "  --allow-destructive     allow destructive operations without confirm (deleteBills=true,\n"
    "                          a bulk update with empty filters)\n"
    "  -q, --quiet             no banner, no progress, no log.info\n"
    "\n"
    "Durations (D): seconds (30, 1.5) or with units: 500ms, 2m, 1h30m.\n"
    "\n"
    "Exit codes: 0 success, 1 script error, 2 usage error, 3 configuration error (also an\n"
    "            uncaught HTTP 401/403: the key was refused), 4 time limit, 5 memory limit,\n"
    "            130 SIGINT, 143 SIGTERM.\n";

enum opt_kind { O_FLAG, O_VALUE };

struct opt {
    const char *name;
    enum opt_kind kind;
    int id;
};

enum {
    OPT_BASE_URL, OPT_ENV, OPT_KEY_FILE, OPT_KEY_FD, OPT_CONFIG, OPT_CACERT, OPT_HTTP_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_INSECURE, OPT_SIM, OPT_MAX_IN_FLIGHT, OPT_RATE, OPT_MAX_MEMORY, OPT_TIMEOUT, OPT_LIB,
    OPT_ALLOW_READ, OPT_ALLOW_WRITE, OPT_DESTRUCTIVE, OPT_QUIET, OPT_HELP,
};

static const struct opt opts[] = {
    {"--base-url", O_VALUE, OPT_BASE_URL},       {"--environment", O_VALUE, OPT_ENV},
    {"--api-key-file", O_VALUE, OPT_KEY_FILE},   {"--api-key-fd", O_VALUE, OPT_KEY_FD},
    {"--config", O_VALUE, OPT_CONFIG},
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
    const char *config_file;
    int sim;
    int dashdash; /* "--" ended the host options */
};

/* Ranges of the numeric options (flags; the config file's keys share config.h's). */
#define RUN_TIMEOUT_MIN_S 0.001
#define RUN_TIMEOUT_MAX_S 2592000.0 /* 30 days */
#define MAX_MEMORY_MIN_MB 0.25      /* a Lua state needs some; 0 would mean "no limit" */
#define MAX_MEMORY_MAX_MB 1048576.0 /* 1 TB */
#define MAX_IN_FLIGHT_MAX 1024
#define RATE_MIN_PER_S 0.001
#define RATE_MAX_PER_S 1000000.0
#define ERR_MAX 512   /* a configuration error message */
#define URL_MAX 64    /* http://127.0.0.1:PORT */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ecaphost: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see ecaphost --help)\n");
    va_end(ap);
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

/* A whole number from min to max. */
static int whole(const char *s, double min, double max, double *out)
{
    return decimal_parse_all(s, out) == 0 && *out == floor(*out) && *out >= min && *out <= max;
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
        if (cfg->api_key_fd >= 0)
            return usage_error("--api-key-file and --api-key-fd: give one of them");
        cfg->key_file_from_cli = 1;
        return config_set(&cfg->api_key_file, v) ? EXIT_SCRIPT : 0;
    case OPT_KEY_FD:
        if (cfg->key_file_from_cli)
            return usage_error("--api-key-file and --api-key-fd: give one of them");
        if (!whole(v, 0, INT_MAX, &d))
            return usage_error("%s needs a descriptor number (got '%s')", o->name, v);
        cfg->api_key_fd = (int)d;
        return 0;
    case OPT_CONFIG: c->config_file = v; return 0;
    case OPT_CACERT: return config_set(&cfg->cacert, v) ? EXIT_SCRIPT : 0;
    case OPT_HTTP_TIMEOUT:
    case OPT_CONNECT_TIMEOUT:
        if (config_parse_request_timeout(v, o->id == OPT_HTTP_TIMEOUT ? &cfg->http_timeout_ms
                                                                      : &cfg->connect_timeout_ms))
            return usage_error("%s needs a duration from %.10g to %.10g seconds, e.g. 30, 1.5, "
                               "500ms, 2m (got '%s')", o->name, CONFIG_REQUEST_TIMEOUT_MIN_S,
                               CONFIG_REQUEST_TIMEOUT_MAX_S, v);
        return 0;
    case OPT_TIMEOUT:
        if (duration_parse(v, &d) || d < RUN_TIMEOUT_MIN_S || d > RUN_TIMEOUT_MAX_S)
            return usage_error("%s needs a duration from %.10g to %.10g seconds (30 days), "
                               "e.g. 90, 10m, 1h30m (got '%s')", o->name, RUN_TIMEOUT_MIN_S,
                               RUN_TIMEOUT_MAX_S, v);
        cfg->timeout_s = d;
        return 0;
    case OPT_MAX_MEMORY:
        if (decimal_parse_all(v, &d) || d < MAX_MEMORY_MIN_MB || d > MAX_MEMORY_MAX_MB)
            return usage_error("%s needs a size in MB from %.10g to %.10g (got '%s')", o->name,
                               MAX_MEMORY_MIN_MB, MAX_MEMORY_MAX_MB, v);
        cfg->max_memory = (size_t)(d * (1 << 20)); /* MB */
        return 0;
    case OPT_MAX_IN_FLIGHT:
        if (!whole(v, 1, MAX_IN_FLIGHT_MAX, &d))
            return usage_error("%s needs a whole number 1..%d (got '%s')", o->name,
                               MAX_IN_FLIGHT_MAX, v);
        cfg->max_in_flight = (int)d;
        return 0;
    case OPT_RATE:
        if (rate_parse(v, &d) || d < RATE_MIN_PER_S || d > RATE_MAX_PER_S)
            return usage_error("%s needs requests per second from %.10g to %.10g, e.g. 20, 20/s "
                               "or 600/min (got '%s')", o->name, RATE_MIN_PER_S, RATE_MAX_PER_S, v);
        cfg->rate = d;
        return 0;
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
    case OPT_HELP: fputs(usage, stdout); exit(EXIT_OK);
    }
    return 0;
}

/* The option a (up to an '=') names, or NULL. */
static const struct opt *find_opt(const char *a)
{
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
        if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0)
            return &opts[k];
    return NULL;
}

/* Parses host options from argv[*i] on; stops at the first non-option. */
static int parse_options(struct cli *c, int argc, char **argv, int *i)
{
    for (; *i < argc; (*i)++) {
        const char *a = argv[*i], *val = NULL, *eq = strchr(a, '=');
        const struct opt *o;
        int rc;
        if (strcmp(a, "--") == 0) {
            (*i)++;
            c->dashdash = 1;
            return 0;
        }
        if (a[0] != '-' || a[1] == 0)
            return 0;
        if (!(o = find_opt(a)))
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

/* A host option after the script's path is the script's (as with lua): easy to do by mistake,
 * so the run says so once, unless -q, or "--" before the script marked the split. */
static void warn_late_options(const struct cli *c, int argc, char **argv, int first)
{
    const struct opt *o;
    if (c->cfg.quiet || c->dashdash)
        return;
    for (int k = first; k < argc; k++)
        if (argv[k][0] == '-' && (o = find_opt(argv[k]))) {
            fprintf(stderr, "ecaphost: %s after the script is passed to the script; put host options first\n",
                    o->name);
            return;
        }
}

/* Starts the private simulator of `run --sim`, and points the client at it. */
static struct sim *start_private_sim(struct config *cfg)
{
    struct sim_options so = {0};
    char err[ERR_MAX], url[URL_MAX];
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

static int client_command(int argc, char **argv, int i, int is_run)
{
    struct cli c;
    struct run_options ro;
    struct sim *sim = NULL;
    char err[ERR_MAX];
    int rc;
    memset(&c, 0, sizeof c);
    config_defaults(&c.cfg);
    if ((rc = parse_options(&c, argc, argv, &i)))
        goto out;
    if (is_run && i >= argc) {
        rc = usage_error("run needs a script%s%s", "", "");
        goto out;
    }
    if (!is_run && i < argc) {
        rc = usage_error("unexpected argument %s%s", argv[i], "");
        goto out;
    }
    /* Before anything opens a descriptor (--api-key-fd names one of the parent's) */
    if (config_take_key_sources(&c.cfg, !c.sim, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (is_run)
        warn_late_options(&c, argc, argv, i + 1);
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
    rc = is_run ? run_script(&ro, argv[i], argc - i - 1, argv + i + 1) : run_ping(&ro);
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
    int rc;
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("ecaphost %s (%s, %s)\n", ECAP_VERSION, LUA_RELEASE, curl_version());
        return EXIT_OK;
    }
    if (strcmp(argv[1], "sim") == 0)
        return sim_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "routes") == 0)
        return routes_command(argc, argv, 2);
    if (strcmp(argv[1], "journal") == 0)
        return journal_command(argc, argv, 2);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ecaphost: cannot initialise libcurl\n");
        return EXIT_SCRIPT;
    }
    if (strcmp(argv[1], "run") == 0)
        rc = client_command(argc, argv, 2, 1);
    else if (strcmp(argv[1], "ping") == 0)
        rc = client_command(argc, argv, 2, 0);
    else if (strcmp(argv[1], "repl") == 0 || strcmp(argv[1], "schedule") == 0)
        rc = usage_error("'%s' is not available in this version yet%s", argv[1], "");
    else
        rc = usage_error("unknown command '%s'%s", argv[1], "");
    curl_global_cleanup();
    return rc;
}
