/* `ecaphost sim [options]`: runs the simulator in the foreground until SIGINT/SIGTERM. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "lib/duration.h"
#include "sim.h"

/* Ranges of the numeric options (the control API's own checks in sim.lua agree). */
#define SIM_PORT_MAX 65535
#define SIM_DEFAULT_PORT 8080 /* USAGE states it */
#define SIM_LATENCY_MAX_S 600.0
#define SIM_TASK_DELAY_MAX_S 3600.0
#define SIM_RATE_LIMIT_MAX_PER_S 1000000.0
#define SIM_NAME_MAX 32 /* longest option name */
#define SIM_ERR_MAX 512

static const char USAGE[] =
    "usage: ecaphost sim [options]\n"
    "\n"
    "Runs the built-in EnergyCAP simulator until SIGINT or SIGTERM.\n"
    "\n"
    "  --port N            port to listen on (default 8080; 0 picks a free port)\n"
    "  --bind ADDR         address to listen on (default 127.0.0.1)\n"
    "  --latency D         each reply leaves D after its request came: 50ms, 0.05s (a bare\n"
    "                      number is seconds)\n"
    "  --data FILE         JSON data set (default: the embedded demo data)\n"
    "  --api-key KEY       the only ECI-ApiKey accepted (default: any non-empty key)\n"
    "  --fail-rate R       share of requests answered 500/503 at random, 0..1\n"
    "  --rate-limit N/s    requests per second before 429 + Retry-After (also N/min; 0 = none)\n"
    "  --task-delay D      time until a cost-avoidance task finishes (default 1s, at most 1h)\n"
    "  --tls-cert FILE     serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE      ... and this PEM private key\n"
    "  --quiet             no per-request log lines on stderr\n"
    "  --help              this text\n"
    "\n"
    "The first line on stdout is `listening on http://ADDR:PORT` (https with TLS).\n"
    "Formats and the fault-control API (/api/__sim/): docs/simulator.md.\n";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: message on stderr, exit code 2. */
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ecaphost sim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see ecaphost sim --help)\n");
    va_end(ap);
    return 2;
}

int sim_main(int argc, char **argv)
{
    struct sim_options o;
    memset(&o, 0, sizeof o);
    o.bind_addr = "127.0.0.1";
    o.port = SIM_DEFAULT_PORT;
    o.log = stderr;
    double task_delay_s = -1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            o.log = NULL;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return bad("unexpected argument '%s'", arg);
        static const char *const known[] = { "--port", "--bind", "--latency", "--data",
                                              "--api-key", "--fail-rate", "--rate-limit",
                                              "--task-delay", "--tls-cert", "--tls-key", NULL };
        size_t nlen = strcspn(arg, "=");
        int is_known = 0;
        for (int k = 0; known[k]; k++)
            if (strlen(known[k]) == nlen && strncmp(known[k], arg, nlen) == 0)
                is_known = 1;
        if (!is_known)
            return bad("unknown option '%.*s'", (int)nlen, arg);
        /* --name value or --name=value */
        char name[SIM_NAME_MAX];
        const char *val;
        const char *eq = strchr(arg, '=');
        if (eq) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof name)
                return bad("unknown option '%s'", arg);
            memcpy(name, arg, n);
            name[n] = '\0';
            val = eq + 1;
        } else {
            if (strlen(arg) >= sizeof name)
                return bad("unknown option '%s'", arg);
            strcpy(name, arg);
            if (i + 1 >= argc)
                return bad("option %s needs a value", arg);
            val = argv[++i];
        }
        double v;
        if (strcmp(name, "--port") == 0) {
            if (decimal_parse_all(val, &v) != 0 || v > SIM_PORT_MAX || v != floor(v))
                return bad("--port: '%s' is not a port number (0..%d)", val, SIM_PORT_MAX);
            o.port = (int)v;
        } else if (strcmp(name, "--bind") == 0) {
            o.bind_addr = val;
        } else if (strcmp(name, "--latency") == 0) {
            if (duration_parse(val, &v) != 0 || v > SIM_LATENCY_MAX_S)
                return bad("--latency: '%s' is not a duration from 0 to %.0f s (e.g. 50ms, 0.05s)",
                           val, SIM_LATENCY_MAX_S);
            o.latency_ms = v * 1000.0;
        } else if (strcmp(name, "--data") == 0) {
            o.data_file = val;
        } else if (strcmp(name, "--api-key") == 0) {
            if (!*val)
                return bad("--api-key: the key must not be empty");
            o.api_key = val;
        } else if (strcmp(name, "--fail-rate") == 0) {
            if (decimal_parse_all(val, &v) != 0 || v > 1)
                return bad("--fail-rate: '%s' is not a number from 0 to 1", val);
            o.fail_rate = v;
        } else if (strcmp(name, "--rate-limit") == 0) {
            if (rate_parse(val, &o.rate_limit) != 0 || o.rate_limit > SIM_RATE_LIMIT_MAX_PER_S)
                return bad("--rate-limit: '%s' is not a rate from 0 to %.0f/s (e.g. 20/s)", val,
                           SIM_RATE_LIMIT_MAX_PER_S);
        } else if (strcmp(name, "--tls-cert") == 0) {
            o.tls_cert = val;
        } else if (strcmp(name, "--tls-key") == 0) {
            o.tls_key = val;
        } else if (strcmp(name, "--task-delay") == 0) {
            if (duration_parse(val, &task_delay_s) != 0 || task_delay_s > SIM_TASK_DELAY_MAX_S)
                return bad("--task-delay: '%s' is not a duration from 0 to %.0f s (e.g. 1s, 200ms)",
                           val, SIM_TASK_DELAY_MAX_S);
        } else {
            return bad("unknown option '%s'", name);
        }
    }

    /* Block the stop signals in every thread (the server's threads inherit this mask) and
     * wait for them here. SIGPIPE is ignored: a client hanging up is not our death. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "ecaphost sim: cannot block signals\n");
        return 1;
    }

    char err[SIM_ERR_MAX];
    struct sim *s = sim_start_with(&o, task_delay_s, err, sizeof err);
    if (!s) {
        fprintf(stderr, "ecaphost sim: %s\n", err);
        return 1;
    }
    if (strchr(o.bind_addr, ':'))
        printf("listening on %s://[%s]:%d\n", sim_scheme(s), o.bind_addr, sim_port(s));
    else
        printf("listening on %s://%s:%d\n", sim_scheme(s), o.bind_addr, sim_port(s));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    if (o.log) {
        fprintf(o.log, "ecaphost sim: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        fflush(o.log);
    }
    sim_stop(s);
    return 0;
}
