/* Settings of one ecaphost process: command line, environment and config file merged.
 * The API key is the only secret; it stays in this struct (C memory) and is never copied
 * into a Lua state, a log line or an error. */
#ifndef ECAP_CONFIG_H
#define ECAP_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include "run/exit_codes.h"
#include "run/host.h"

#define CONFIG_MAX_DIRS FS_MAX_GRANTS
#define CONFIG_MAX_ROUTES ROUTES_MAX
#define CONFIG_KEY_MAX_BYTES 1024 /* a key file or descriptor holding more is refused: no real
                                  * key is that long (the header line is sized to the key) */
#define CONFIG_REQUEST_TIMEOUT_MIN_S 0.001 /* 0 would mean "no timeout" to curl */
#define CONFIG_REQUEST_TIMEOUT_MAX_S 86400.0
#define RETRIES_MAX 20
#define RETRY_BUDGET_MIN_S 0.001
#define RETRY_BUDGET_MAX_S 86400.0

/* route.<name> = <spec> from the config file, as written (checked by routes_init). */
struct config_route {
    char *name;   /* Lua name, e.g. "meter_groups.refresh" */
    char *spec;   /* "POST /api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup" */
    char *origin; /* "file:line" for messages */
};

struct config {
    char *base_url;          /* scheme://host[:port], no path */
    char *environment;       /* name given with --environment (or the file's, once used) */
    char *file_base_url;     /* the config file's base_url / environment: they come last */
    char *file_environment;
    char *api_key;           /* secret: C memory only */
    char *api_key_file;
    int key_file_from_cli;   /* --api-key-file wins over ECAP_API_KEY */
    int api_key_fd;          /* --api-key-fd N (wins over ECAP_API_KEY), or -1 */
    int key_inode_known;     /* the key came from a file: fs refuses that inode */
    dev_t key_dev;
    ino_t key_ino;
    char *cacert;
    char *config_path;       /* file actually read, or NULL */
    const char *profile;     /* --profile / $ECAP_PROFILE: the config file's [section] to use
                              * on top of its defaults, or NULL (not owned) */
    long http_timeout_ms;    /* total time of one request */
    long connect_timeout_ms;
    int insecure_http;
    int quiet;
    int simulator;           /* talking to the built-in simulator (run --sim) */
    int allow_destructive;
    size_t max_memory;       /* bytes; 0 = unlimited */
    double timeout_s;        /* wall clock for the run; 0 = none */
    int max_in_flight;       /* host-wide cap on transfers in flight */
    double rate;             /* requests per second, 0 = unlimited */
    const char *lib_dirs[CONFIG_MAX_DIRS];
    int n_lib_dirs;
    char *read_dirs[CONFIG_MAX_DIRS];   /* resolved (realpath) */
    int n_read_dirs;
    char *write_dirs[CONFIG_MAX_DIRS];
    int n_write_dirs;
    int retries;             /* --retries */
    double retry_budget_s;   /* --retry-budget */
    int verbose;             /* -v 1, -vv 2 */
    int dry_run;             /* --dry-run */
    char *journal;           /* --journal FILE (config journal = PATH), or NULL */
    int log_format;          /* --log-format (config log_format): lib/log.h's, or -1 unset (text) */
    char *resume;            /* --resume JOURNAL, or NULL */
    int resend_unknown;      /* --resend-unknown */
    char *upload_part_name;  /* upload.part_name, or NULL */
    long long upload_max_bytes; /* upload.max_mb in bytes, or 0 */
    struct config_route routes[CONFIG_MAX_ROUTES];
    int n_routes;
    struct routes route_table; /* built by config_run_options */
};

/* Fills ro with the view of c that a run takes (pointers into c: c outlives the run) and
 * builds c's route table (the overrides checked). Returns 0, or -1 with err naming the
 * override's file:line. */
int config_run_options(struct config *c, struct run_options *ro, char *err, size_t errlen);


void config_defaults(struct config *c);
void config_free(struct config *c);

/* Reads a `key = value` config file. path may be NULL: then $ECAP_CONFIG, then
 * $XDG_CONFIG_HOME/ecaphost/config (or ~/.config/ecaphost/config), the last two only if they
 * exist. Values already set (from the command line) win. Lines after `[name]` belong to the
 * profile `name`: with c->profile (else $ECAP_PROFILE) set, that section's lines apply on top
 * of the lines before any section; an unknown profile, or a profile without a config file, is
 * an error. Returns 0, or -1 with a message naming the file and line in err. */
int config_load_file(struct config *c, const char *path, int explicit_path, char *err, size_t errlen);

/* Takes the key sources that must not outlive start-up: $ECAP_API_KEY leaves the environment
 * (its bytes overwritten, so /proc/self/environ no longer shows it, then unset) and the
 * --api-key-fd descriptor is read and closed; either gives c->api_key when need_key and the
 * precedence says so. Call it right after the command line is parsed, before the process
 * opens descriptors of its own (N must be the parent's). Once done, a second call does
 * nothing. Returns 0 or -1 with err (exit 3). */
int config_take_key_sources(struct config *c, int need_key, char *err, size_t errlen);

/* Fills base URL and key from environment/config after the command line was parsed, checks
 * them (scheme, loopback rule for http://, key file permissions). need_key = 0 for the
 * simulator. Takes the key sources first if the caller has not (config_take_key_sources), so
 * whatever it returns, they are gone. Returns 0 or -1 with err. */
int config_finish(struct config *c, int need_key, char *err, size_t errlen);

/* Parses the time limit of one request (--http-timeout, http_timeout, ...): a duration
 * (lib/duration.h) from CONFIG_REQUEST_TIMEOUT_MIN_S to _MAX_S, into *ms. Returns 0 or -1. */
int config_parse_request_timeout(const char *s, long *ms);

/* Maps an --environment name to its base URL, or NULL. */
const char *config_environment_url(const char *name);

/* Strdup into a field, freeing the old value. Returns -1 on allocation failure. */
int config_set(char **field, const char *value);

#endif
