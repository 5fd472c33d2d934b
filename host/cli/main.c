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
#include "lib/log.h"
#include "repl/repl.h"
#include "run/runner.h"
#include "sched/sched.h"
#include "sim/sim.h"

#define CONNECTION_OPTIONS \
    "Connection:\n" \
    "  --base-url URL          scheme, host and port of the API (e.g. https://app.energycap.com)\n" \
    "  --environment NAME      us-east | us-west | eu | fedramp | implement\n" \
    "  --api-key-file FILE     read the API key from FILE (mode 600); else $ECAP_API_KEY\n" \
    "  --api-key-fd N          read the API key from descriptor N (e.g. a pipe), then close it\n" \
    "  --config FILE           config file (default $ECAP_CONFIG, $XDG_CONFIG_HOME/ecaphost/config)\n" \
    "  --profile NAME          use the config file's [NAME] section (default $ECAP_PROFILE)\n" \
    "  --cacert FILE           CA bundle for a private CA\n" \
    "  --http-timeout D        total time of one request (default 120 s)\n" \
    "  --connect-timeout D     time to connect (default 15 s)\n" \
    "  --insecure-http         allow plain http:// to a non-loopback host\n" \
    "  --sim                   start a private built-in simulator and talk to it (no key needed)\n" \
    "  --max-in-flight N       requests in flight at once, across the whole run (default 64)\n" \
    "  --rate N[/s|/min]       at most N requests per second (or minute; default unlimited)\n" \
    "  --retries N             retries of a call after its first attempt (default 4; 0 = none)\n" \
    "  --retry-budget D        time all attempts of one call may take (default 120 s)\n" \
    "  -v, --verbose           a line per request and reply on stderr; -vv adds headers and bodies\n" \
    "  --log-format F          text (default) or json: every stderr line a JSON object (time, level,\n" \
    "                          msg, run_id; the trace's fields); config log_format\n" \
    "  --log-job NAME, --log-run-id ID  job and run_id of JSON lines (ecaphost schedule sets them)\n" \
    "\n" \
    "Safety:\n" \
    "  --dry-run               send GETs; print every mutating call instead of sending it\n" \
    "  --journal FILE          record every mutating call (intent before, outcome after)\n" \
    "  --resume JOURNAL        run again, answering calls the journal has as done from it\n" \
    "  --resend-unknown        with --resume: send again calls of unknown outcome\n"

#define SANDBOX_OPTIONS \
    "Sandbox:\n" \
    "  --max-memory MB         memory limit of the script (default 512)\n" \
    "  --timeout D             wall-clock limit of the run (default none)\n" \
    "  --lib DIR               let require() load Lua modules from DIR (repeatable)\n" \
    "  --allow-read DIR        let fs/csv read files under DIR (repeatable)\n" \
    "  --allow-write DIR       let fs write files under DIR (repeatable; implies read)\n" \
    "  --allow-destructive     the run consents to destructive calls (deleteBills=true, a bulk\n" \
    "                          update with empty filters): no prompt, no confirm needed\n" \
    "  -q, --quiet             no banner, no progress, no log.info\n" \
    "\n" \
    "Durations (D): seconds (30, 1.5) or with units: 500ms, 2m, 1h30m.\n"

#define EXIT_CODES \
    "Exit codes: 0 success, 1 script error, 2 usage error, 3 configuration error (also an\n" \
    "            uncaught HTTP 401/403: the key was refused), 4 time limit, 5 memory limit,\n" \
    "            6 a mutating call's outcome is unknown, 130 SIGINT, 143 SIGTERM.\n"

static const char usage[] =
    "usage: ecaphost run [options] SCRIPT [ARGS...]   run a Lua workflow script\n"
    "       ecaphost run [options] -e CHUNK [ARGS...] run the Lua text CHUNK\n"
    "       ecaphost run [options] - [ARGS...]        run the script read from stdin\n"
    "       ecaphost repl [options] [-l MOD] [-i SCRIPT [ARGS...]]  interactive session\n"
    "       ecaphost ping [options]                   check the API key and the connection\n"
    "       ecaphost sim [--port N] [options]         serve the built-in EnergyCAP simulator\n"
    "       ecaphost routes [--json] [--config FILE]  list the bindings, their routes and sources\n"
    "       ecaphost schedule [options] JOBS.lua      run scripts on a schedule (schedule --help)\n"
    "       ecaphost journal [--json] FILE            summarise a call journal: per operation ok,\n"
    "                                                 failed, unknown...; the unknown calls listed\n"
    "                                                 (exit 1 if any; 3 unreadable or malformed)\n"
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
    OPT_BASE_URL, OPT_ENV, OPT_KEY_FILE, OPT_KEY_FD, OPT_CONFIG, OPT_CACERT, OPT_HTTP_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_INSECURE, OPT_SIM, OPT_MAX_IN_FLIGHT, OPT_RATE, OPT_MAX_MEMORY, OPT_TIMEOUT, OPT_LIB,
    OPT_ALLOW_READ, OPT_ALLOW_WRITE, OPT_DESTRUCTIVE, OPT_QUIET, OPT_HELP, OPT_RETRIES,
    OPT_RETRY_BUDGET, OPT_VERBOSE, OPT_VERY_VERBOSE, OPT_PROFILE, OPT_DRY_RUN, OPT_JOURNAL,
    OPT_RESUME, OPT_RESEND_UNKNOWN, OPT_LOG_FORMAT, OPT_LOG_JOB, OPT_LOG_RUN_ID,
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
    {"--retries", O_VALUE, OPT_RETRIES},         {"--retry-budget", O_VALUE, OPT_RETRY_BUDGET},
    {"--verbose", O_FLAG, OPT_VERBOSE},          {"-v", O_FLAG, OPT_VERBOSE},
    {"-vv", O_FLAG, OPT_VERY_VERBOSE},
    {"--dry-run", O_FLAG, OPT_DRY_RUN},          {"--journal", O_VALUE, OPT_JOURNAL},
    {"--resume", O_VALUE, OPT_RESUME},           {"--resend-unknown", O_FLAG, OPT_RESEND_UNKNOWN},
    {"--profile", O_VALUE, OPT_PROFILE},
    {"--log-format", O_VALUE, OPT_LOG_FORMAT},   {"--log-job", O_VALUE, OPT_LOG_JOB},
    {"--log-run-id", O_VALUE, OPT_LOG_RUN_ID},
};

struct cli {
    struct config cfg;
    const char *help;       /* the command's own usage text, printed by --help */
    int repl;               /* -l and -i end the host options (the REPL's own) */
    const char *config_file;
    int sim;
    int dashdash; /* "--" ended the host options */
    const char *log_job, *log_run_id; /* --log-job, --log-run-id (the scheduler's) */
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
    case OPT_PROFILE: cfg->profile = v; return 0;
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
    case OPT_RETRIES:
        if (!whole(v, 0, RETRIES_MAX, &d))
            return usage_error("%s needs a whole number 0..%d (got '%s')", o->name, RETRIES_MAX, v);
        cfg->retries = (int)d;
        return 0;
    case OPT_RETRY_BUDGET:
        if (duration_parse(v, &d) || d < RETRY_BUDGET_MIN_S || d > RETRY_BUDGET_MAX_S)
            return usage_error("%s needs a duration from %.10g to %.10g seconds (got '%s')", o->name,
                               RETRY_BUDGET_MIN_S, RETRY_BUDGET_MAX_S, v);
        cfg->retry_budget_s = d;
        return 0;
    case OPT_VERBOSE: cfg->verbose = cfg->verbose < 1 ? 1 : 2; return 0;
    case OPT_DRY_RUN: cfg->dry_run = 1; return 0;
    case OPT_JOURNAL: return config_set(&cfg->journal, v) ? EXIT_SCRIPT : 0;
    case OPT_RESUME: return config_set(&cfg->resume, v) ? EXIT_SCRIPT : 0;
    case OPT_RESEND_UNKNOWN: cfg->resend_unknown = 1; return 0;
    case OPT_VERY_VERBOSE: cfg->verbose = 2; return 0;
    case OPT_LOG_FORMAT:
        if ((cfg->log_format = log_format_parse(v)) < 0)
            return usage_error("%s needs text or json (got '%s')", o->name, v);
        return 0;
    case OPT_LOG_JOB: c->log_job = v; return 0;
    case OPT_LOG_RUN_ID: c->log_run_id = v; return 0;
    case OPT_HELP: fputs(c->help ? c->help : usage, stdout); exit(EXIT_OK);
    }
    return 0;
}

/* The host option named by a ("--name" or "--name=value"; *eq: the '=' or NULL), or NULL. */
static const struct opt *find_opt(const char *a, const char **eq)
{
    size_t nlen;
    *eq = strchr(a, '=');
    nlen = *eq ? (size_t)(*eq - a) : strlen(a);
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
        if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0)
            return &opts[k];
    return NULL;
}

/* Parses host options from argv[*i] on; stops at the first non-option. */
static int parse_options(struct cli *c, int argc, char **argv, int *i)
{
    for (; *i < argc; (*i)++) {
        const char *a = argv[*i], *val = NULL, *eq;
        const struct opt *o;
        int rc;
        if (strcmp(a, "--") == 0) {
            (*i)++;
            c->dashdash = 1;
            return 0;
        }
        if (a[0] != '-' || a[1] == 0 || strcmp(a, "-e") == 0)
            return 0; /* the script: a path, "-" (stdin) or -e CHUNK */
        if (c->repl && (strcmp(a, "-l") == 0 || strcmp(a, "-i") == 0))
            return 0;
        if (!(o = find_opt(a, &eq)))
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
    const char *eq;
    if (c->cfg.quiet || c->dashdash)
        return;
    for (int k = first; k < argc; k++)
        if (argv[k][0] == '-' && (o = find_opt(argv[k], &eq))) {
            log_host("WARN", "%s after the script is passed to the script; put host options first", o->name);
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
        log_host("ERROR", "cannot start the simulator: %s", err);
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

/* Switches the process's log lines to JSON when the flag or the config file asked for it. */
static int use_log_format(const struct config *cfg)
{
    if (cfg->log_format == LOG_JSON && !log_is_json() && log_set_format(LOG_JSON)) {
        fprintf(stderr, "ecaphost: out of memory\n");
        return EXIT_SCRIPT;
    }
    return 0;
}

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
    char err[ERR_MAX];
    int rc;
    memset(&c, 0, sizeof c);
    c.help = help[cmd];
    c.repl = cmd == CMD_REPL;
    config_defaults(&c.cfg);
    if ((rc = parse_options(&c, argc, argv, &i)) || (rc = check_rest(cmd, argc, argv, i)))
        goto out;
    log_set_context(c.log_job, c.log_run_id);
    /* --log-format at once (usage errors above stay text); the config file's once it is read */
    if ((rc = use_log_format(&c.cfg)))
        goto out;
    /* Before anything opens a descriptor (--api-key-fd names one of the parent's) */
    if (config_take_key_sources(&c.cfg, !c.sim, err, sizeof err)) {
        log_host("ERROR", "%s", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (config_load_file(&c.cfg, c.config_file, c.config_file != NULL, err, sizeof err)) {
        log_host("ERROR", "%s", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    if ((rc = use_log_format(&c.cfg)))
        goto out;
    if (cmd == CMD_RUN)
        warn_late_options(&c, argc, argv, i + 1);
    if (c.sim && !(sim = start_private_sim(&c.cfg))) {
        rc = EXIT_CONFIG;
        goto out;
    }
    if (config_finish(&c.cfg, !c.sim, err, sizeof err) || config_run_options(&c.cfg, &ro, err, sizeof err)) {
        log_host("ERROR", "%s", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    rc = dispatch(cmd, &ro, argc, argv, i);
out:
    if (sim)
        sim_stop(sim);
    config_free(&c.cfg);
    log_set_format(LOG_TEXT);
    log_set_context(NULL, NULL);
    return rc;
}

static const char schedule_usage[] =
    "usage: ecaphost schedule [host options] [schedule options] JOBS.lua\n"
    "Runs the jobs of JOBS.lua (Lua returning a list of jobs, or { max_parallel = N, jobs = {...} })\n"
    "on time, each as a separate `ecaphost run` with the job's limits; see docs/schedule.md.\n"
    "\n"
    "Schedule options:\n"
    "  --check                 check the file and compile every job's script (nothing runs)\n"
    "  --list                  print each job with its next three run times\n"
    "  --status                print each job's last outcome and next run; exit 1 if one failed\n"
    "  --once NAME             run job NAME now, print its output, exit with its code\n"
    "  --run-log FILE          the run log (default STATE/runs.jsonl)\n"
    "  --grace S               on SIGTERM/SIGINT, time running jobs get before they are stopped\n"
    "                          (default 30)\n"
    "  --log-format json       the scheduler's log lines as JSON objects (time, level, msg, job,\n"
    "                          run_id), and its runs' (passed on); default text\n"
    "Host options (see ecaphost --help) are passed to every run, before the job's own.\n"
    "STATE: $STATE_DIRECTORY, else $XDG_STATE_HOME/ecaphost, else ~/.local/state/ecaphost.\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 --status: a job's last run failed, 2 usage error\n"
    "            or unknown --once job, 3 bad schedule file or failed --check, 75 another\n"
    "            scheduler holds the lock; --once: the run's own exit code.\n";

/* Host options whose value is a path: made absolute, since runs start in the schedule
 * file's directory. */
static int is_path_option(int id)
{
    return id == OPT_KEY_FILE || id == OPT_CONFIG || id == OPT_CACERT || id == OPT_LIB || id == OPT_ALLOW_READ
           || id == OPT_ALLOW_WRITE;
}

static char *absolute_path(const char *p)
{
    char cwd[PATH_MAX], *out;
    size_t n;
    if (p[0] == '/' || !getcwd(cwd, sizeof cwd))
        return strdup(p);
    n = strlen(cwd) + strlen(p) + 2;
    if ((out = malloc(n)))
        snprintf(out, n, "%s/%s", cwd, p);
    return out;
}

/* One schedule option at argv[*i] (its value consumed); 1 if it was not one, 0, or an exit
 * code. */
static int schedule_option(struct sched_options *so, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *const with_value[] = {"--run-log", "--once", "--grace"};
    const char *v = NULL;
    double d;
    if (strcmp(a, "--log-format") == 0 || strncmp(a, "--log-format=", 13) == 0) {
        v = a[12] == '=' ? a + 13 : *i + 1 < argc ? argv[++(*i)] : NULL;
        if (!v || log_format_parse(v) < 0)
            return usage_error("--log-format needs text or json (got '%s')%s", v ? v : "", "");
        so->log_json = log_format_parse(v) == LOG_JSON;
        return 0;
    }
    if (strcmp(a, "--check") == 0 || strcmp(a, "--list") == 0 || strcmp(a, "--status") == 0) {
        *(a[2] == 'c' ? &so->check : a[2] == 'l' ? &so->list : &so->status) = 1;
        return 0;
    }
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
        size_t n = strlen(with_value[k]);
        if (strncmp(a, with_value[k], n) || (a[n] && a[n] != '='))
            continue;
        if (a[n] == '=')
            v = a + n + 1;
        else if (*i + 1 < argc)
            v = argv[++(*i)];
        else
            return usage_error("%s needs a value%s", with_value[k], "");
        if (k == 0)
            so->run_log = v;
        else if (k == 1)
            so->once = v;
        else if (duration_parse(v, &d) || d > 86400)
            return usage_error("--grace needs seconds from 0 to 86400 (got '%s')%s", v, "");
        else
            so->grace_s = d;
        return 0;
    }
    return 1;
}

/* sched_options.check_profile: the profile is a section of the config file the runs will
 * read (ud: --config FILE, or NULL for the default places). */
static int profile_exists(const char *profile, void *ud, char *err, size_t errlen)
{
    struct config cfg;
    int rc;
    config_defaults(&cfg);
    cfg.profile = profile;
    rc = config_load_file(&cfg, ud, ud != NULL, err, errlen);
    config_free(&cfg);
    return rc;
}

/* `ecaphost schedule [options] JOBS.lua`: host options are checked here and passed on. */
static int schedule_command(int argc, char **argv, int i)
{
    struct sched_options so;
    struct cli c;
    char **pass = calloc((size_t)argc * 2 + 1, sizeof *pass), err[512];
    int n_pass = 0, rc = 0, key_file = 0;
    memset(&so, 0, sizeof so);
    memset(&c, 0, sizeof c);
    config_defaults(&c.cfg);
    so.grace_s = 30;
    if (!pass)
        return EXIT_SCRIPT;
    for (; i < argc && !rc; i++) {
        const char *a = argv[i], *eq;
        const struct opt *o;
        if (a[0] != '-' || a[1] == 0) {
            if (so.file)
                rc = usage_error("schedule: unexpected argument %s%s", a, "");
            so.file = a;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(schedule_usage, stdout);
            goto out;
        }
        if ((rc = schedule_option(&so, argc, argv, &i)) != 1)
            continue;
        rc = 0;
        if (!(o = find_opt(a, &eq))) {
            rc = usage_error("schedule: unknown option %s%s", a, "");
            break;
        }
        if (o->kind == O_FLAG && eq) {
            rc = usage_error("%s takes no value%s", o->name, "");
            break;
        }
        if (o->kind == O_VALUE && !eq && i + 1 >= argc) {
            rc = usage_error("%s needs a value%s", o->name, "");
            break;
        }
        {
            const char *v = o->kind == O_VALUE ? (eq ? eq + 1 : argv[++i]) : NULL;
            if ((rc = apply(&c, o, v)))
                break;
            key_file |= o->id == OPT_KEY_FILE;
            if (o->id == OPT_KEY_FD)
                continue; /* read once, here: each run gets the key on a pipe of its own */
            pass[n_pass++] = strdup(o->name);
            if (v)
                pass[n_pass++] = is_path_option(o->id) ? absolute_path(v) : strdup(v);
            if (!pass[n_pass - 1] || (v && !pass[n_pass - 2]))
                rc = EXIT_SCRIPT;
        }
    }
    if (rc)
        goto out;
    if (!so.file) {
        rc = usage_error("schedule needs a schedule file (JOBS.lua)%s%s", "", "");
        goto out;
    }
    if (so.check + so.list + so.status + (so.once != NULL) > 1) {
        rc = usage_error("schedule: --check, --list, --status and --once exclude each other%s%s", "", "");
        goto out;
    }
    if (c.cfg.profile && profile_exists(c.cfg.profile, (void *)c.config_file, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    /* The key the scheduler holds, piped to each run: from --api-key-fd, else $ECAP_API_KEY
     * (taken out of the environment either way), unless --api-key-file names a file (each run
     * then reads that file itself). In c.cfg: wiped when freed. */
    if (config_take_key_sources(&c.cfg, !key_file, err, sizeof err)) {
        fprintf(stderr, "ecaphost: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    so.api_key = c.cfg.api_key;
    so.check_profile = profile_exists;
    so.check_profile_ud = (void *)c.config_file;
    so.host_args = pass;
    so.n_host_args = n_pass;
    rc = sched_main(&so);
out:
    for (int k = 0; k < n_pass; k++)
        free(pass[k]);
    free(pass);
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
    if (strcmp(cmd, "journal") == 0)
        return journal_command(argc, argv, 2);
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
        rc = schedule_command(argc, argv, 2);
    else
        rc = usage_error("unknown command '%s'%s", cmd, "");
    curl_global_cleanup();
    return rc;
}
