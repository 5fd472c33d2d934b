/* Settings: defaults, the config file, the environment, and the checks that must pass before
 * a script starts. Precedence: command line > environment > config file. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "net/retry.h"
#include "lib/regfile.h"
#include "lib/duration.h"
#include "lib/log.h"

#define ENV_API_KEY "ECAP_API_KEY"

extern char **environ; /* POSIX; unistd.h declares it only under _GNU_SOURCE */
#define CONFIG_LINE_MAX 4096          /* longest config file line */
#define CONFIG_WHERE_MAX (CONFIG_LINE_MAX + 128) /* "path:line" for messages */
#define CONFIG_MSG_MAX 256            /* a message naming a file to go after "path:line: " */

/* Defaults (main.c's --help states them) */
#define DEFAULT_HTTP_TIMEOUT_MS 120000
#define DEFAULT_CONNECT_TIMEOUT_MS 15000
#define DEFAULT_MAX_MEMORY_MB 512
#define DEFAULT_MAX_IN_FLIGHT 64

static const struct { const char *name, *url; } environments[] = {
    {"us-east", "https://app.energycap.com"},
    {"us-west", "https://wce.energycap.com"},
    {"eu", "https://app-eu.energycap.com"},
    {"fedramp", "https://app.fed-energycap.com"},
    {"implement", "https://implement.energycap.com"},
};

const char *config_environment_url(const char *name)
{
    for (size_t i = 0; i < sizeof environments / sizeof environments[0]; i++)
        if (strcmp(environments[i].name, name) == 0)
            return environments[i].url;
    return NULL;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->http_timeout_ms = DEFAULT_HTTP_TIMEOUT_MS;
    c->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_memory = (size_t)DEFAULT_MAX_MEMORY_MB << 20;
    c->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    c->retries = RETRIES_DEFAULT;
    c->retry_budget_s = RETRY_BUDGET_DEFAULT;
    c->api_key_fd = -1;
    c->log_format = -1;
}

/* Overwrites n bytes: the key must not linger in freed memory or a stack buffer. */
static void wipe_bytes(char *s, size_t n)
{
    volatile char *p = s;
    while (n--)
        *p++ = 0;
}

static void wipe(char *s)
{
    if (s)
        wipe_bytes(s, strlen(s));
}

void config_free(struct config *c)
{
    wipe(c->api_key);
    free(c->api_key);
    free(c->base_url);
    free(c->environment);
    free(c->file_base_url);
    free(c->file_environment);
    free(c->api_key_file);
    free(c->cacert);
    free(c->config_path);
    free(c->upload_part_name);
    free(c->journal);
    free(c->resume);
    for (int i = 0; i < c->n_read_dirs; i++)
        free(c->read_dirs[i]);
    for (int i = 0; i < c->n_write_dirs; i++)
        free(c->write_dirs[i]);
    for (int i = 0; i < c->n_routes; i++) {
        free(c->routes[i].name);
        free(c->routes[i].spec);
        free(c->routes[i].origin);
    }
    memset(c, 0, sizeof *c);
}

int config_set(char **field, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -1;
    free(*field);
    *field = v;
    return 0;
}

/* ~/x -> $HOME/x; the result is malloc'd. */
static char *expand_home(const char *path)
{
    const char *home = getenv("HOME");
    if (path[0] == '~' && path[1] == '/' && home) {
        size_t n = strlen(home) + strlen(path);
        char *s = malloc(n);
        if (s)
            snprintf(s, n, "%s%s", home, path + 1);
        return s;
    }
    return strdup(path);
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int config_parse_request_timeout(const char *s, long *ms)
{
    double secs;
    if (duration_parse(s, &secs) || secs < CONFIG_REQUEST_TIMEOUT_MIN_S ||
        secs > CONFIG_REQUEST_TIMEOUT_MAX_S)
        return -1;
    *ms = (long)(secs * 1000 + 0.5);
    return 0;
}

/* A path from the file (~ expanded) unless the command line gave one. -1: out of memory. */
static int path_once(char **field, const char *val)
{
    if (!*field && !(*field = expand_home(val)))
        return -1;
    return 0;
}

/* Applies one `key = value` pair from the file unless the command line set it already. */
static int apply_key(struct config *c, const char *key, const char *val, const char *where,
                     char *err, size_t errlen)
{
    if (strcmp(key, "base_url") == 0) {
        if (config_set(&c->file_base_url, val))
            goto oom;
    } else if (strcmp(key, "environment") == 0) {
        if (!config_environment_url(val)) {
            snprintf(err, errlen, "%s: unknown environment '%s' (us-east, us-west, eu, fedramp, implement)", where, val);
            return -1;
        }
        if (config_set(&c->file_environment, val))
            goto oom;
    } else if (strcmp(key, "api_key_file") == 0) {
        if (path_once(&c->api_key_file, val))
            goto oom;
    } else if (strcmp(key, "cacert") == 0) {
        if (path_once(&c->cacert, val))
            goto oom;
    } else if (strcmp(key, "http_timeout") == 0 || strcmp(key, "connect_timeout") == 0) {
        if (config_parse_request_timeout(val, key[0] == 'h' ? &c->http_timeout_ms
                                                             : &c->connect_timeout_ms)) {
            snprintf(err, errlen, "%s: %s must be a duration from %.10g to %.10g seconds, "
                     "e.g. 30, 1.5, 500ms, 2m (got '%s')", where, key,
                     CONFIG_REQUEST_TIMEOUT_MIN_S, CONFIG_REQUEST_TIMEOUT_MAX_S, val);
            return -1;
        }
    } else if (strcmp(key, "insecure_http") == 0 || strcmp(key, "allow_destructive") == 0) {
        /* switches: the file can turn one on; a command-line flag cannot be turned off by it */
        if (strcmp(val, "true") && strcmp(val, "false")) {
            snprintf(err, errlen, "%s: %s must be true or false (got '%s')", where, key, val);
            return -1;
        }
        *(key[0] == 'i' ? &c->insecure_http : &c->allow_destructive) |= strcmp(val, "true") == 0;
    } else if (strcmp(key, "upload.part_name") == 0) {
        /* a form field name: a token, so it can stand in Content-Disposition as it is */
        if (strlen(val) > 64 || strspn(val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(val)) {
            snprintf(err, errlen, "%s: upload.part_name must be 1..64 letters, digits, '_', '-' or '.' (got '%s')", where, val);
            return -1;
        }
        if (config_set(&c->upload_part_name, val))
            goto oom;
    } else if (strcmp(key, "journal") == 0) {
        if (path_once(&c->journal, val))
            goto oom;
    } else if (strcmp(key, "log_format") == 0) {
        int f = log_format_parse(val);
        if (f < 0) {
            snprintf(err, errlen, "%s: log_format must be text or json (got '%s')", where, val);
            return -1;
        }
        if (c->log_format < 0)
            c->log_format = f;
    } else if (strcmp(key, "upload.max_mb") == 0) {
        char *end;
        long mb;
        errno = 0;
        mb = strtol(val, &end, 10);
        if (errno || *end || end == val || mb < 1 || mb > 4096) {
            snprintf(err, errlen, "%s: upload.max_mb must be a whole number of MB from 1 to 4096 (got '%s')", where, val);
            return -1;
        }
        c->upload_max_bytes = (long long)mb << 20;
    } else if (strncmp(key, "route.", 6) == 0) {
        struct config_route *r; /* checked with the others in config_run_options */
        if (c->n_routes >= CONFIG_MAX_ROUTES) {
            snprintf(err, errlen, "%s: too many route overrides", where);
            return -1;
        }
        r = &c->routes[c->n_routes];
        r->name = strdup(key + 6);
        r->spec = strdup(val);
        r->origin = strdup(where);
        c->n_routes++;
        if (!r->name || !r->spec || !r->origin)
            goto oom;
    } else {
        snprintf(err, errlen, "%s: unknown key '%s' (known: base_url, environment, api_key_file, "
                 "cacert, http_timeout, connect_timeout, insecure_http, allow_destructive, journal, log_format, "
                 "upload.part_name, upload.max_mb, route.<area>.<function>)", where, key);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", where);
    return -1;
}

/* A `[name]` line: the name into *section (malloc'd). Returns 0, or -1 with err. */
static int section_header(char *s, const char *where, char **section, char *err, size_t errlen)
{
    size_t n = strlen(s);
    char *name = s + 1;
    s[n - 1] = 0;
    name = trim(name);
    if (!*name || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(name)) {
        snprintf(err, errlen, "%s: expected [profile] with a name of letters, digits, '.', '_' or '-'", where);
        return -1;
    }
    if (config_set(section, name)) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    return 0;
}

/* Profiles: lines before any [section] are the defaults; the lines of the selected profile's
 * section (c->profile) come on top of them; other sections are checked (into `other`) and
 * otherwise ignored. A profile's api_key_file and cacert replace the defaults' (the command
 * line's still win: it set them before the file was read). */
struct sections {
    const char *profile;   /* selected, or NULL */
    char *current;         /* the section being read, or NULL (defaults) */
    int found;
    char *key_file, *cacert; /* the defaults' values, set aside while the profile is read */
    int cli_key_file, cli_cacert;
    struct config other;
};

static void enter_profile(struct config *c, struct sections *x)
{
    if (!x->cli_key_file && !x->key_file) {
        x->key_file = c->api_key_file;
        c->api_key_file = NULL;
    }
    if (!x->cli_cacert && !x->cacert) {
        x->cacert = c->cacert;
        c->cacert = NULL;
    }
}

static void end_sections(struct config *c, struct sections *x)
{
    if (!c->api_key_file) {
        c->api_key_file = x->key_file;
        x->key_file = NULL;
    }
    if (!c->cacert) {
        c->cacert = x->cacert;
        x->cacert = NULL;
    }
    free(x->key_file);
    free(x->cacert);
    free(x->current);
    config_free(&x->other);
}

static int parse_file(struct config *c, FILE *f, const char *path, char *err, size_t errlen)
{
    char line[CONFIG_LINE_MAX], where[CONFIG_WHERE_MAX];
    int lineno = 0, rc = -1;
    struct sections x;
    memset(&x, 0, sizeof x);
    x.profile = c->profile;
    x.cli_key_file = c->api_key_file != NULL;
    x.cli_cacert = c->cacert != NULL;
    config_defaults(&x.other);
    while (fgets(line, sizeof line, f)) {
        char *s, *eq;
        struct config *into;
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s: line too long", where);
            goto out;
        }
        s = trim(line);
        if (*s == 0 || *s == '#')
            continue;
        if (*s == '[' && s[strlen(s) - 1] == ']') {
            if (section_header(s, where, &x.current, err, errlen))
                goto out;
            if (x.profile && strcmp(x.current, x.profile) == 0) {
                x.found = 1;
                enter_profile(c, &x);
            }
            continue;
        }
        eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value'", where);
            goto out;
        }
        *eq = 0;
        if (*trim(s) == 0 || *trim(eq + 1) == 0) {
            snprintf(err, errlen, "%s: expected 'key = value'", where);
            goto out;
        }
        into = !x.current || (x.profile && strcmp(x.current, x.profile) == 0) ? c : &x.other;
        if (apply_key(into, trim(s), trim(eq + 1), where, err, errlen))
            goto out;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    if (x.profile && !x.found) {
        snprintf(err, errlen, "config file %s has no profile [%s]", path, x.profile);
        goto out;
    }
    rc = 0;
out:
    end_sections(c, &x);
    return rc;
}

int config_load_file(struct config *c, const char *path, int explicit_path, char *err, size_t errlen)
{
    char buf[CONFIG_LINE_MAX];
    FILE *f;
    int rc;
    if (!c->profile && getenv("ECAP_PROFILE") && *getenv("ECAP_PROFILE"))
        c->profile = getenv("ECAP_PROFILE");
    if (!path) {
        const char *env = getenv("ECAP_CONFIG");
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (env && *env) {
            path = env;
            explicit_path = 1;
        } else if (xdg && *xdg) {
            snprintf(buf, sizeof buf, "%s/ecaphost/config", xdg);
            path = buf;
        } else if (home && *home) {
            snprintf(buf, sizeof buf, "%s/.config/ecaphost/config", home);
            path = buf;
        } else if (c->profile) {
            snprintf(err, errlen, "profile [%s] needs a config file: pass --config FILE or set ECAP_CONFIG", c->profile);
            return -1;
        } else {
            return 0;
        }
    }
    if (strcmp(path, "/dev/null") == 0)
        return 0; /* the usual "no config file" */
    f = regfile_open(path); /* a FIFO or a device would make the run wait before any limit */
    if (!f) {
        if (!explicit_path && errno == ENOENT && !c->profile)
            return 0;
        if (c->profile && errno == ENOENT) {
            snprintf(err, errlen, "profile [%s] needs a config file: %s does not exist", c->profile, path);
            return -1;
        }
        snprintf(err, errlen, "config file %s: %s", path, regfile_why(errno));
        return -1;
    }
    rc = parse_file(c, f, path, err, errlen);
    fclose(f);
    if (rc == 0 && config_set(&c->config_path, path)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    return rc;
}

/* Reads the key from fd, what naming it for messages: to end of file, at most
 * CONFIG_KEY_MAX_BYTES; the key is its first line, trimmed. Stores it in c->api_key when
 * store, else drops it. Returns 0 or -1 with err. */
static int read_key_text(struct config *c, int fd, const char *what, int store, char *err,
                         size_t errlen)
{
    char buf[CONFIG_KEY_MAX_BYTES + 2], *key;
    size_t n = 0;
    int rc = -1;
    while (n <= CONFIG_KEY_MAX_BYTES) {
        ssize_t got = read(fd, buf + n, CONFIG_KEY_MAX_BYTES + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "API key %s: %s", what, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > CONFIG_KEY_MAX_BYTES) {
        snprintf(err, errlen, "API key %s holds more than %d bytes: not an API key",
                 what, CONFIG_KEY_MAX_BYTES);
        goto out;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        snprintf(err, errlen, "API key %s holds a NUL byte: not an API key", what);
        goto out;
    }
    buf[strcspn(buf, "\r\n")] = 0;
    key = trim(buf);
    if (*key == 0)
        snprintf(err, errlen, "API key %s is empty", what);
    else if (store && config_set(&c->api_key, key))
        snprintf(err, errlen, "out of memory");
    else
        rc = 0;
out:
    wipe_bytes(buf, sizeof buf);
    return rc;
}

/* Remembers the key file's inode (a descriptor's): fs refuses to open it, or any hard link. */
static void note_key_inode(struct config *c, const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return;
    c->key_inode_known = 1;
    c->key_dev = st->st_dev;
    c->key_ino = st->st_ino;
}

/* systemd 254 and later give a service its credentials ($CREDENTIALS_DIRECTORY, which only
 * that service can enter) through an ACL: the files show mode 0440. Such a file, the one st
 * describes (the same inode: no swapped link), may be group-readable; never other-readable. */
static int systemd_credential(const char *path, const struct stat *st)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    char *rp, *rd;
    struct stat here;
    int ok = 0;
    if (!dir || !*dir || (st->st_mode & 007))
        return 0;
    rp = realpath(path, NULL);
    rd = realpath(dir, NULL);
    if (rp && rd && stat(rp, &here) == 0 && here.st_dev == st->st_dev && here.st_ino == st->st_ino) {
        char *slash = strrchr(rp, '/');
        *slash = 0; /* realpath is absolute: there is a slash */
        ok = strcmp(rp[0] ? rp : "/", rd) == 0;
    }
    free(rp);
    free(rd);
    return ok;
}

static int read_key_file(struct config *c, char *err, size_t errlen)
{
    char what[CONFIG_WHERE_MAX];
    struct stat st;
    int rc, fd = open(c->api_key_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "API key file %s: %s", c->api_key_file, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "API key file %s: %s", c->api_key_file, strerror(errno));
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) && !systemd_credential(c->api_key_file, &st)) {
        close(fd);
        snprintf(err, errlen, "API key file %s is readable by group or others (mode %03o); "
                 "run: chmod 600 %s", c->api_key_file, (unsigned)(st.st_mode & 0777), c->api_key_file);
        return -1;
    }
    note_key_inode(c, &st);
    snprintf(what, sizeof what, "file %s", c->api_key_file);
    rc = read_key_text(c, fd, what, 1, err, errlen);
    close(fd);
    return rc;
}

/* --api-key-fd N: reads the key from N, then closes N (0..2 are pointed at /dev/null instead,
 * so that no later open takes over a standard stream). */
static int read_key_fd(struct config *c, int store, char *err, size_t errlen)
{
    char what[CONFIG_MSG_MAX];
    struct stat st;
    int rc, fd = c->api_key_fd, null_fd;
    snprintf(what, sizeof what, "descriptor %d (--api-key-fd)", fd);
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "API key %s: %s", what, strerror(errno));
        return -1;
    }
    note_key_inode(c, &st);
    rc = read_key_text(c, fd, what, store, err, errlen);
    if (fd > STDERR_FILENO || (null_fd = open("/dev/null", O_RDWR)) < 0) {
        close(fd);
    } else if (null_fd != fd) {
        dup2(null_fd, fd);
        close(null_fd);
    }
    c->api_key_fd = -1; /* read once */
    return rc;
}

/* Takes $ECAP_API_KEY out of the environment before any script runs: its bytes are
 * overwritten in place (unsetenv alone leaves them in the block /proc/self/environ shows),
 * then it is unset. Stores the key in c->api_key when use. Returns 0 or -1 (memory). */
static int take_env_key(struct config *c, int use, char *err, size_t errlen)
{
    char *env = getenv(ENV_API_KEY);
    int rc = 0;
    if (!env)
        return 0;
    if (use && *env && config_set(&c->api_key, env)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    /* every copy: a crafted environment may hold the name twice, getenv finds the first */
    for (char **e = environ; *e; e++)
        if (strncmp(*e, ENV_API_KEY "=", sizeof ENV_API_KEY) == 0)
            wipe(*e + sizeof ENV_API_KEY);
    unsetenv(ENV_API_KEY);
    return rc;
}

static int is_loopback_host(const char *host, size_t len)
{
    if ((len == 9 && strncmp(host, "localhost", 9) == 0) || (len == 5 && strncmp(host, "[::1]", 5) == 0))
        return 1;
    return len >= 4 && strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == len;
}

/* Base URL: scheme://host[:port] with no path, query or credentials. */
static int check_base_url(struct config *c, char *err, size_t errlen)
{
    const char *u = c->base_url, *host, *end;
    size_t len = strlen(u);
    while (len > 0 && u[len - 1] == '/')
        c->base_url[--len] = 0; /* "https://x/" is the same base URL */
    if (strncmp(u, "https://", 8) == 0)
        host = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        host = u + 7;
    else {
        snprintf(err, errlen, "base URL '%s' must start with https:// (or http:// for a loopback address)", u);
        return -1;
    }
    if (*host == '[') { /* [v6 address] */
        end = strchr(host, ']');
        end = end ? end + 1 : host;
    } else {
        end = host + strcspn(host, ":/?#@");
    }
    if (end == host || *end == '/' || *end == '?' || *end == '#' || *end == '@' || strchr(host, '/')) {
        snprintf(err, errlen, "base URL '%s' must be scheme, host and port only (e.g. https://app.energycap.com); "
                 "paths start with /api/ in each call", u);
        return -1;
    }
    if (*end == ':' && (end[1] == 0 || strspn(end + 1, "0123456789") != strlen(end + 1))) {
        snprintf(err, errlen, "base URL '%s' has a bad port", u);
        return -1;
    }
    if (u[4] == ':' && !c->insecure_http && !is_loopback_host(host, (size_t)(end - host))) {
        snprintf(err, errlen, "base URL '%s' uses plain http:// to a non-loopback host; use https:// "
                 "or pass --insecure-http", u);
        return -1;
    }
    return 0;
}

/* Base URL precedence: --base-url, --environment, $ECAP_BASE_URL, the file's base_url, the
 * file's environment. */
static int resolve_base_url(struct config *c, char *err, size_t errlen)
{
    const char *env = getenv("ECAP_BASE_URL"), *url = NULL;
    if (c->base_url)
        return 0;
    if (c->environment)
        url = config_environment_url(c->environment);
    else if (env && *env)
        url = env;
    else if (c->file_base_url)
        url = c->file_base_url;
    else if (c->file_environment) {
        url = config_environment_url(c->file_environment);
        if (config_set(&c->environment, c->file_environment))
            url = NULL;
    }
    if (!url) {
        snprintf(err, errlen, "no base URL: pass --base-url URL or --environment NAME, set ECAP_BASE_URL, "
                 "or put base_url in the config file (or use --sim)");
        return -1;
    }
    if (config_set(&c->base_url, url)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int config_take_key_sources(struct config *c, int need_key, char *err, size_t errlen)
{
    int want = need_key && !c->api_key; /* run --sim has its key already */
    int key_from_cli = c->api_key_fd >= 0 || (c->api_key_file && c->key_file_from_cli);
    if (take_env_key(c, want && !key_from_cli, err, errlen))
        return -1;
    if (c->api_key_fd >= 0 && read_key_fd(c, want, err, errlen))
        return -1;
    return 0;
}

int config_finish(struct config *c, int need_key, char *err, size_t errlen)
{
    /* A no-op when the caller took them already: whatever fails next, neither keeps the key */
    if (config_take_key_sources(c, need_key, err, errlen))
        return -1;
    if (resolve_base_url(c, err, errlen))
        return -1;
    if (check_base_url(c, err, errlen))
        return -1;
    if (!need_key || c->api_key)
        return 0;
    if (c->api_key_file)
        return read_key_file(c, err, errlen);
    snprintf(err, errlen, "no API key: set ECAP_API_KEY, or pass --api-key-file FILE or "
             "--api-key-fd N, or put api_key_file in the config file");
    return -1;
}

_Static_assert(CONFIG_MAX_DIRS <= RUN_MAX_LIB_DIRS, "--lib directories exceed what require searches");

int config_run_options(struct config *c, struct run_options *ro, char *err, size_t errlen)
{
    struct route_override ov[CONFIG_MAX_ROUTES];
    for (int i = 0; i < c->n_routes; i++) {
        ov[i].name = c->routes[i].name;
        ov[i].spec = c->routes[i].spec;
        ov[i].origin = c->routes[i].origin;
    }
    if (routes_init(&c->route_table, ov, c->n_routes, err, errlen))
        return -1;
    memset(ro, 0, sizeof *ro);
    ro->net.base_url = c->base_url;
    ro->net.api_key = c->api_key;
    ro->net.cacert = c->cacert;
    ro->net.http_timeout_ms = c->http_timeout_ms;
    ro->net.connect_timeout_ms = c->connect_timeout_ms;
    ro->net.max_in_flight = c->max_in_flight;
    ro->net.retries = c->retries;
    ro->net.retry_budget_s = c->retry_budget_s;
    ro->net.verbose = c->verbose;
    ro->net.quiet = c->quiet;
    ro->net.dry_run = c->dry_run;
    ro->net.journal_path = c->journal ? c->journal : c->resume; /* a resumed run appends to it */
    ro->net.resume_path = c->resume;
    ro->net.resend_unknown = c->resend_unknown;
    ro->net.rate = c->rate;
    ro->fs.read_dirs = c->read_dirs;
    ro->fs.n_read_dirs = c->n_read_dirs;
    ro->fs.write_dirs = c->write_dirs;
    ro->fs.n_write_dirs = c->n_write_dirs;
    ro->fs.key.known = c->key_inode_known;
    ro->fs.key.dev = c->key_dev;
    ro->fs.key.ino = c->key_ino;
    ro->consent.allow_destructive = c->allow_destructive;
    ro->routes = &c->route_table;
    ro->upload.part_name = c->upload_part_name;
    ro->upload.max_bytes = c->upload_max_bytes;
    ro->max_memory = c->max_memory;
    ro->timeout_s = c->timeout_s;
    ro->lib_dirs = c->lib_dirs;
    ro->n_lib_dirs = c->n_lib_dirs;
    ro->quiet = c->quiet;
    ro->simulator = c->simulator;
    ro->environment = c->environment;
    ro->config_path = c->config_path;
    return 0;
}
