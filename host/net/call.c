/* The one call path: request building, the wait, and the reply turned into Lua values. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <lauxlib.h>

#include "audit.h"
#include "call.h"
#include "lib/errors.h"
#include "http.h"
#include "lib/json.h"
#include "lib/limits.h"
#include "loop.h"
#include "ledger.h"
#include "lib/libs.h"
#include "lib/log.h"
#include "options.h"
#include "retry.h"

#define XFER_MT "ecap.transfer"
#define ERR_BODY_MAX 2048 /* bytes of a non-JSON error body kept in the error */
#define REPLY_MAX_UNLIMITED ((size_t)1 << 30) /* largest reply without --max-memory */
#define QUERY_MAX 64      /* query parameters of one call */
#define NUM_TEXT_MAX 64   /* text of a number in a query */
#define ESCAPE_CHUNK 256  /* bytes URL-escaped at a time into a stack buffer */
#define ERR_TEXT_MAX 256  /* a decoder's or transfer's error message */
#define TRACE_BODY_MAX 2000 /* bytes of a body shown by -vv */
#define LOG_LINE_MAX 1024

/* A transfer lives in a userdata on the caller's stack, so it survives a yield and is freed by
 * the collector if the caller dies: uservalue 1 = request body (string), 2 = path, 3 = the
 * handle of an uploaded file. */
struct call_ud {
    struct xfer x;
    int attempts;          /* made so far */
    double started;        /* monotonic time of the first attempt (--retry-budget) */
    double retry_at;       /* when the next attempt starts */
    char operation[64];    /* for log lines and the ledger */
    int mutating;          /* the safety layer's: not a GET, nor a POST that only reads */
    struct audit_call audit; /* its place in the call journal */
};

static int xfer_gc(lua_State *L)
{
    struct call_ud *u = luaL_checkudata(L, 1, XFER_MT);
    xfer_release(&u->x);
    return 0;
}

int url_escape(const char *s, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                return -1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = 0;
    return (int)o;
}

static void add_escaped(luaL_Buffer *b, const char *s, size_t len)
{
    char tmp[3 * ESCAPE_CHUNK + 1];
    while (len > 0) {
        size_t n = len > ESCAPE_CHUNK ? ESCAPE_CHUNK : len;
        int w = url_escape(s, n, tmp, sizeof tmp);
        luaL_addlstring(b, tmp, (size_t)w);
        s += n;
        len -= n;
    }
}

/* Paths stay under /api/ on the configured host: no absolute URL, no dot segments (plain or
 * percent-encoded), no query or fragment smuggled in, nothing a server might normalise away. */
const char *call_path_problem(const char *p)
{
    if (strncmp(p, "/api/", 5) != 0)
        return "must start with /api/ (scripts talk only to the configured EnergyCAP host)";
    for (const char *s = p; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f || c == '\\' || c == '?' || c == '#')
            return "must not contain spaces, control characters, '\\', '?' or '#' (use opts.query)";
        if (c == '%' && s[1] && s[2]) {
            char h[3] = {(char)tolower((unsigned char)s[1]), (char)tolower((unsigned char)s[2]), 0};
            if (!strcmp(h, "2e") || !strcmp(h, "2f") || !strcmp(h, "5c"))
                return "must not contain encoded '.', '/' or '\\'";
        }
        if (c == '/' && s[1] == '/')
            return "must not contain '//'";
        if (c == '/' && s[1] == '.' && (s[2] == '/' || s[2] == 0 || (s[2] == '.' && (s[3] == '/' || s[3] == 0))))
            return "must not contain '.' or '..' segments";
    }
    return NULL;
}

/* The text of the value at idx: a string points into that value (keep it on the stack while
 * the text is used), a number is written into num. */
static const char *query_text(lua_State *L, int idx, const char *key, char *num, size_t numlen,
                              size_t *len)
{
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        s = lua_toboolean(L, idx) ? "true" : "false";
        *len = strlen(s);
        return s;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            *len = (size_t)snprintf(num, numlen, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            /* the shortest text that reads back as the same double, as in JSON bodies */
            double v = (double)lua_tonumber(L, idx);
            for (int digits = 15; digits <= 17; digits++) {
                *len = (size_t)snprintf(num, numlen, "%.*g", digits, v);
                if (strtod(num, NULL) == v)
                    break;
            }
        }
        return num;
    case LUA_TSTRING:
        return lua_tolstring(L, idx, len);
    default:
        err_raise(L, "validation", "query parameter %s must be a string, number or boolean (got %s)",
                  key, luaL_typename(L, idx));
        return NULL;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* [-0, +0] Appends key and the text of the value at vidx to the pair array pt (our own). */
static void push_pair(lua_State *L, int pt, lua_Integer *n, const char *key, int vidx)
{
    char num[NUM_TEXT_MAX];
    size_t len;
    const char *s = query_text(L, vidx, key, num, sizeof num, &len);
    lua_pushlstring(L, s, len);
    lua_pushstring(L, key); /* on top: stored first, at the odd index */
    lua_rawseti(L, pt, ++*n);
    lua_rawseti(L, pt, ++*n);
}

/* [-0, +1] Pushes a private copy of the script's query table q: the array {k1, v1, k2, v2, ...}
 * of strings, keys sorted (a request is reproducible), array values repeating their key.
 * Nothing is read through a pointer that only q anchors: a finalizer that empties q while we
 * allocate cannot free what we read. Raw access only: no metamethod of the script runs. */
static int push_query_pairs(lua_State *L, int q)
{
    const char *keys[QUERY_MAX];
    lua_Integer n = 0;
    int nkeys = 0, kt, pt;
    lua_createtable(L, QUERY_MAX, 0); /* the keys, anchored here while they are sorted */
    kt = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, q)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            err_raise(L, "validation", "query keys must be strings");
        if (nkeys == QUERY_MAX)
            err_raise(L, "validation", "too many query parameters (max %d)", QUERY_MAX);
        lua_pushvalue(L, -1);
        lua_rawseti(L, kt, ++nkeys);
    }
    for (int i = 0; i < nkeys; i++) {
        lua_rawgeti(L, kt, i + 1);
        keys[i] = lua_tostring(L, -1); /* anchored by kt, which nothing else can reach */
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)nkeys, sizeof keys[0], cmp_str);
    lua_createtable(L, 2 * nkeys, 0);
    pt = lua_gettop(L);
    for (int i = 0; i < nkeys; i++) {
        lua_pushstring(L, keys[i]);
        if (lua_rawget(L, q) == LUA_TTABLE) {
            lua_Integer count = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer j = 1; j <= count; j++) {
                lua_rawgeti(L, -1, j);
                push_pair(L, pt, &n, keys[i], lua_gettop(L));
                lua_pop(L, 1);
            }
        } else {
            push_pair(L, pt, &n, keys[i], lua_gettop(L));
        }
        lua_pop(L, 1);
    }
    lua_remove(L, kt);
    return (int)n;
}

/* Appends "?k=v&k=v" from the pair array at pt (push_query_pairs). A luaL_Buffer may sit on
 * top of the stack: each string is read and popped before the next buffer operation, and stays
 * anchored by pt, which only we hold. */
static void add_query(lua_State *L, luaL_Buffer *b, int pt, int n)
{
    for (int i = 1; i < n; i += 2) {
        const char *key, *value;
        size_t klen, vlen;
        lua_rawgeti(L, pt, i);
        key = lua_tolstring(L, -1, &klen);
        lua_pop(L, 1);
        lua_rawgeti(L, pt, i + 1);
        value = lua_tolstring(L, -1, &vlen);
        lua_pop(L, 1);
        luaL_addchar(b, i == 1 ? '?' : '&');
        add_escaped(b, key, klen);
        luaL_addchar(b, '=');
        add_escaped(b, value, vlen);
    }
}

static int header_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* Raises the memory-limit stop if charging the budget set it, else "out of memory". */
static int raise_oom(lua_State *L)
{
    limits_check(L);
    return luaL_error(L, "out of memory");
}

/* opts.headers: non-secret extras, at most HTTP_HEADERS_MAX lines of HTTP_HEADER_LINE_MAX
 * bytes. The key header and transport headers stay ours. */
static void add_headers(lua_State *L, struct xfer *x, int h)
{
    static const char *const reserved[] = {"eci-apikey", "host", "content-length", "transfer-encoding",
                                           "connection", "authorization", "cookie", "content-type",
                                           "accept", "user-agent", "expect", NULL};
    char line[HTTP_HEADER_LINE_MAX + 1];
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, h)) {
        const char *name, *value;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            err_raise(L, "validation", "opts.headers must map header names to strings");
        if (++count > HTTP_HEADERS_MAX)
            err_raise(L, "validation", "opts.headers: too many headers (at most %d)", HTTP_HEADERS_MAX);
        name = lua_tostring(L, -2);
        value = lua_tostring(L, -1);
        if (!header_name_ok(name) || strpbrk(value, "\r\n"))
            err_raise(L, "validation", "opts.headers: bad header %s", name);
        for (int i = 0; reserved[i]; i++)
            if (strcasecmp(name, reserved[i]) == 0)
                err_raise(L, "validation", "opts.headers: %s is set by ecaphost and cannot be changed", name);
        if ((size_t)snprintf(line, sizeof line, "%s: %s", name, value) >= sizeof line)
            err_raise(L, "validation", "opts.headers: header %s is too long (at most %d bytes per line)",
                      name, HTTP_HEADER_LINE_MAX);
        if (xfer_add_header(x, line))
            raise_oom(L);
        lua_pop(L, 1);
    }
}

static const char *reason(long status)
{
    switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized (bad API key, or the key's user lacks the permission)";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 409: return "conflict";
    case 413: return "request too large";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 502: return "bad gateway";
    case 503: return "service unavailable";
    case 504: return "gateway timeout";
    default: return status >= 500 ? "server error" : "request failed";
    }
}

/* One "Name: value" line of a raw reply header block. */
struct header_line {
    const char *name, *name_end, *value, *value_end;
};

/* Reads the header line at *p (up to end) into h and moves *p past it. Returns 0 at the end
 * of the block; h->name is NULL for a line that is not a header (the status line). */
static int next_header(const char **p, const char *end, struct header_line *h)
{
    const char *eol, *line_end, *colon;
    if (!*p || *p >= end)
        return 0;
    eol = memchr(*p, '\n', (size_t)(end - *p));
    line_end = eol ? eol : end;
    colon = memchr(*p, ':', (size_t)(line_end - *p));
    h->name = NULL;
    if (colon && colon > *p) {
        h->name = *p;
        h->name_end = colon;
        h->value = colon + 1;
        h->value_end = line_end;
        while (h->value < h->value_end && (*h->value == ' ' || *h->value == '\t'))
            h->value++;
        while (h->value_end > h->value && (h->value_end[-1] == '\r' || h->value_end[-1] == ' '))
            h->value_end--;
    }
    *p = line_end + 1;
    return 1;
}

/* Pushes a table of the reply's headers, names lower-cased. */
static void push_headers(lua_State *L, const struct membuf *m)
{
    const char *p = m->data;
    struct header_line h;
    lua_newtable(L);
    while (next_header(&p, m->data + m->len, &h)) {
        luaL_Buffer b;
        if (!h.name)
            continue;
        luaL_buffinit(L, &b);
        for (const char *c = h.name; c < h.name_end; c++)
            luaL_addchar(&b, (char)tolower((unsigned char)*c));
        luaL_pushresult(&b);
        lua_pushlstring(L, h.value, (size_t)(h.value_end - h.value));
        lua_rawset(L, -3);
    }
}

/* How a reply body is read: by its Content-Type. */
enum body_kind {
    BODY_TEXT,    /* any other type: the body as a string */
    BODY_JSON,    /* application/json or type/subtype+json, parameters allowed: decoded */
    BODY_UNTYPED, /* no Content-Type: decoded if it parses as JSON, else a string */
};

static int is_json_type(const char *v, size_t n)
{
    static const char json[] = "application/json", suffix[] = "+json";
    const size_t json_len = sizeof json - 1, suffix_len = sizeof suffix - 1;
    const char *slash = memchr(v, '/', n);
    if (n == json_len && strncasecmp(v, json, json_len) == 0)
        return 1;
    return slash && slash > v && n > suffix_len && slash + 1 < v + n - suffix_len &&
           strncasecmp(v + n - suffix_len, suffix, suffix_len) == 0;
}

static enum body_kind body_kind(const struct membuf *m)
{
    const char *p = m->data;
    struct header_line h;
    while (next_header(&p, m->data + m->len, &h)) {
        size_t n = 0;
        if (!h.name || h.name_end - h.name != 12 || strncasecmp(h.name, "content-type", 12) != 0)
            continue;
        while (h.value + n < h.value_end && h.value[n] != ';' && h.value[n] != ' ' && h.value[n] != '\t')
            n++; /* the media type, without parameters */
        return is_json_type(h.value, n) ? BODY_JSON : BODY_TEXT;
    }
    return BODY_UNTYPED;
}

/* [-0, +(0|1)] Pushes the decoded reply body unless it is to stay text. Returns 1 when it
 * pushed, 0 when the body stays text, -1 (err filled) when a JSON-typed body does not parse.
 * A UTF-8 byte order mark before the JSON is skipped. */
static int push_json_body(lua_State *L, const struct xfer *x, char *err, size_t errlen)
{
    static const char bom[] = "\xEF\xBB\xBF";
    const char *b = x->body.data;
    size_t n = x->body.len;
    enum body_kind kind = body_kind(&x->head);
    if (kind == BODY_TEXT)
        return 0;
    if (n >= sizeof bom - 1 && memcmp(b, bom, sizeof bom - 1) == 0) {
        b += sizeof bom - 1;
        n -= sizeof bom - 1;
    }
    if (json_decode(L, b, n, err, errlen) == 0)
        return 1;
    return kind == BODY_JSON ? -1 : 0;
}

/* The value of the reply header name (case-insensitive) in m, or NULL; *n its length. */
static const char *header_value(const struct membuf *m, const char *name, size_t *n)
{
    const char *p = m->data;
    size_t len = strlen(name);
    struct header_line h;
    while (next_header(&p, m->data + m->len, &h))
        if (h.name && (size_t)(h.name_end - h.name) == len && strncasecmp(h.name, name, len) == 0) {
            *n = (size_t)(h.value_end - h.value);
            return h.value;
        }
    return NULL;
}

static int is_html(const struct membuf *m)
{
    size_t n = 0;
    const char *v = header_value(m, "content-type", &n);
    return v && n >= 9 && strncasecmp(v, "text/html", 9) == 0;
}

/* One host log line, formatted; fields go into its JSON form (lib/log.h). */
static void vnote(lua_State *L, const char *level, const struct log_field *fields, int n_fields, const char *fmt,
                  va_list ap)
{
    char line[LOG_LINE_MAX];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n > 0)
        log_write_fields(L, level, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, fields, n_fields);
}

static void note(lua_State *L, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(lua_State *L, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(L, level, NULL, 0, fmt, ap);
    va_end(ap);
}

/* A -v line with its fields (method, url, attempt; status, bytes, ms or error on a reply). */
static void trace(lua_State *L, const struct log_field *fields, int n_fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void trace(lua_State *L, const struct log_field *fields, int n_fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(L, "TRACE", fields, n_fields, fmt, ap);
    va_end(ap);
}

/* -v: one line per request; -vv: its headers (the key redacted) and body too. */
static void trace_request(lua_State *L, const struct loop *lpc, struct call_ud *u, const char *body,
                          size_t body_len)
{
    const struct net_options *opts = loop_options((struct loop *)lpc);
    if (opts->verbose < 1)
        return;
    {
        const struct log_field f[] = {{"method", u->x.method, 0}, {"url", u->x.url, 0}, {"attempt", NULL, u->attempts}};
        trace(L, f, 3, "> %s %s (attempt %d)", u->x.method, u->x.url, u->attempts);
    }
    if (opts->verbose < 2)
        return;
    for (const struct curl_slist *h = xfer_header_list(&u->x); h; h = h->next) {
        if (strncasecmp(h->data, "ECI-ApiKey:", 11) == 0)
            note(L, "TRACE", ">   ECI-ApiKey: [redacted]");
        else if (h->data[strlen(h->data) - 1] != ':') /* "Expect:" removes a header */
            note(L, "TRACE", ">   %s", h->data);
    }
    if (body && body_len)
        note(L, "TRACE", ">   %.*s%s", (int)(body_len > TRACE_BODY_MAX ? TRACE_BODY_MAX : body_len), body,
             body_len > TRACE_BODY_MAX ? " ..." : "");
}

static void trace_reply(lua_State *L, const struct call_ud *u, long status)
{
    const struct net_options *opts = loop_options(u->x.lp);
    const struct xfer *x = &u->x;
    if (opts->verbose < 1)
        return;
    if (x->result != CURLE_OK) {
        const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
        const struct log_field f[] = {{"method", x->method, 0}, {"url", x->url, 0}, {"error", why, 0},
                                      {"attempt", NULL, u->attempts}};
        trace(L, f, 4, "< %s %s: %s (attempt %d)", x->method, x->url, why, u->attempts);
    } else {
        const struct log_field f[] = {{"status", NULL, (double)status}, {"method", x->method, 0}, {"url", x->url, 0},
                                      {"bytes", NULL, (double)x->body.len},
                                      {"ms", NULL, floor(x->elapsed * 10000.0 + 0.5) / 10.0},
                                      {"attempt", NULL, u->attempts}};
        trace(L, f, 6, "< %ld %s %s %d bytes %.1f ms (attempt %d)", status, x->method, x->url, (int)x->body.len,
              x->elapsed * 1000.0, u->attempts);
    }
    if (opts->verbose < 2)
        return;
    {
        const char *p = x->head.data;
        struct header_line h;
        while (next_header(&p, x->head.data + x->head.len, &h))
            if (h.name)
                note(L, "TRACE", "<   %.*s: %.*s", (int)(h.name_end - h.name), h.name,
                     (int)(h.value_end - h.value), h.value);
    }
    if (x->body.len)
        note(L, "TRACE", "<   %.*s%s", (int)(x->body.len > TRACE_BODY_MAX ? TRACE_BODY_MAX : x->body.len),
             x->body.data, x->body.len > TRACE_BODY_MAX ? " ..." : "");
}

/* ECI-Deprecated on a reply: the API names the call's replacement. Warned once per operation. */
static void check_deprecated(lua_State *L, struct call_ud *u)
{
    size_t n = 0;
    const char *v = header_value(&u->x.head, "eci-deprecated", &n);
    if (v && ledger_first_deprecation(loop_ledger(u->x.lp), u->operation))
        note(L, "WARN", "%s (%s %s): the API says this call is deprecated: %.*s", u->operation,
             u->x.method, u->x.url, (int)(n > 300 ? 300 : n), v);
}

/* Decides whether attempt u->attempts is followed by another, and when; logs the decision.
 * Returns 1 with u->retry_at set, or 0 (then *retry_after holds a Retry-After that did not
 * fit the budget, or -1). */
static int plan_retry(lua_State *L, struct call_ud *u, const struct retry_verdict *v, double *retry_after)
{
    const struct net_options *opts = loop_options(u->x.lp);
    int retries = opts->retries >= 0 ? opts->retries : RETRIES_DEFAULT;
    double budget = opts->retry_budget_s > 0 ? opts->retry_budget_s : RETRY_BUDGET_DEFAULT;
    double now = now_monotonic(), left = budget - (now - u->started), delay;
    size_t n = 0;
    const char *ra = header_value(&u->x.head, "retry-after", &n);
    char text[64];
    *retry_after = -1;
    if (!v->retry || u->x.too_large || u->attempts > retries)
        return 0;
    if (ra && n < sizeof text) {
        memcpy(text, ra, n);
        text[n] = '\0';
        if (retry_after_parse(text, time(NULL), &delay) == 0) {
            if (delay > left) {
                *retry_after = delay;
                return 0;
            }
        } else {
            delay = retry_backoff(u->attempts, ledger_seed(loop_ledger(u->x.lp)));
        }
    } else {
        delay = retry_backoff(u->attempts, ledger_seed(loop_ledger(u->x.lp)));
    }
    if (delay > left)
        return 0;
    if (!opts->quiet)
        note(L, "INFO", "%s %s %s: attempt %d failed (%s); retrying in %.1f s", u->operation, u->x.method,
             u->x.url, u->attempts, v->reason ? v->reason : "error", delay);
    u->retry_at = now + delay;
    return 1;
}

static int time_reached(void *arg)
{
    return now_monotonic() >= *(const double *)arg;
}

static int finish_k(lua_State *L, int status, lua_KContext ctx);

static int xfer_done(void *arg)
{
    return ((struct xfer *)arg)->state == X_DONE;
}

/* Starts attempt u->attempts + 1 and waits for it. */
static int send_attempt(lua_State *L, int ud)
{
    struct call_ud *u = lua_touserdata(L, ud);
    const char *body = NULL;
    size_t body_len = 0;
    if (lua_getiuservalue(L, ud, 1) == LUA_TSTRING)
        body = lua_tolstring(L, -1, &body_len);
    lua_pop(L, 1); /* still anchored by the transfer */
    u->attempts++;
    trace_request(L, u->x.lp, u, body, body_len);
    u->x.waiter = loop_waiter(L);
    loop_submit(u->x.lp, &u->x);
    return loop_wait(L, u->x.lp, xfer_done, &u->x, NULL, finish_k, (lua_KContext)ud);
}

static int retry_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return send_attempt(L, (int)ctx);
}

/* Sets err.outcome, err.attempts on the error table on top; records an unknown outcome. */
static void mark_outcome(lua_State *L, struct call_ud *u, enum call_outcome outcome)
{
    if (u->audit.seq) {
        long status = 0;
        lua_getfield(L, -1, "status");
        status = (long)lua_tointeger(L, -1);
        lua_getfield(L, -2, "message");
        audit_after(L, u->x.lp, &u->audit, outcome, status, u->attempts, now_monotonic() - u->started,
                    0, lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_pushstring(L, retry_outcome_name(outcome));
    lua_setfield(L, -2, "outcome");
    lua_pushinteger(L, u->attempts);
    lua_setfield(L, -2, "attempts");
    if (outcome == OUTCOME_UNKNOWN) {
        lua_getfield(L, -1, "message");
        lua_pushfstring(L, "%s (outcome unknown: the server may have done it; not sent again)",
                        lua_tostring(L, -1));
        lua_setfield(L, -3, "message");
        lua_pop(L, 1);
        if (ledger_note_unknown(loop_ledger(u->x.lp), u->operation, u->x.method, u->x.url))
            raise_oom(L);
    } else if (u->attempts > 1) {
        lua_getfield(L, -1, "message");
        lua_pushfstring(L, "%s (after %d attempts)", lua_tostring(L, -1), u->attempts);
        lua_setfield(L, -3, "message");
        lua_pop(L, 1);
    }
}

/* Builds the results of a finished transfer (or raises its error). */
static int finish(lua_State *L, int ud_idx)
{
    struct call_ud *u = lua_touserdata(L, ud_idx);
    struct xfer *x = &u->x;
    char err[ERR_TEXT_MAX];
    long status = 0, sent = 0;
    const char *path;
    struct attempt a;
    struct retry_verdict v;
    double retry_after = -1;
    if (x->result == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
    {
        curl_off_t us = 0;
        curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
        x->elapsed = (double)us / 1e6;
    }
    a.mutating = u->mutating;
    a.result = x->result;
    a.status = status;
    a.sent = sent;
    retry_judge(&a, &v);
    trace_reply(L, u, status);
    if (plan_retry(L, u, &v, &retry_after)) {
        struct task *t = loop_waiter(L);
        xfer_rearm(x);
        if (t && loop_timer(x->lp, u->retry_at, t))
            raise_oom(L);
        return loop_wait(L, x->lp, time_reached, &u->retry_at, NULL, retry_k, (lua_KContext)ud_idx);
    }
    if (x->result == CURLE_OK)
        check_deprecated(L, u);
    lua_getiuservalue(L, ud_idx, 2);
    path = lua_tostring(L, -1);
    if (x->result != CURLE_OK) {
        const char *kind = x->result == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network";
        if (x->too_large)
            err_push(L, "network", "reply too large for the memory limit (--max-memory %d MB)",
                     (int)(x->max_body >> 20));
        else
            err_push(L, kind, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result));
        lua_pushstring(L, x->method);
        lua_setfield(L, -2, "method");
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "path");
        mark_outcome(L, u, x->too_large && a.mutating ? OUTCOME_UNKNOWN : v.outcome);
        xfer_release(x);
        return lua_error(L);
    }
    /* results: body, {status=, headers=, elapsed=} */
    if (status >= 200 && status < 300 && is_html(&x->head)) {
        /* a proxy's or a sign-in page, not the API: never taken for a success */
        lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len > ERR_BODY_MAX ? ERR_BODY_MAX : x->body.len);
        err_push(L, "http", "the reply is an HTML page, not the API (a proxy or a sign-in page?)");
        lua_insert(L, -2);
        lua_setfield(L, -2, "body");
        v.outcome = OUTCOME_FAILED;
        goto http_fields;
    }
    if (x->body.len == 0) {
        lua_pushnil(L);
    } else {
        int ok2xx = status >= 200 && status < 300;
        int got = push_json_body(L, x, err, sizeof err);
        if (got < 0 && ok2xx) {
            err_push(L, "http", "reply is not valid JSON (%s)", err);
            goto http_fields;
        }
        if (got <= 0)
            lua_pushlstring(L, x->body.data, x->body.len > ERR_BODY_MAX && !ok2xx ? ERR_BODY_MAX : x->body.len);
    }
    if (status < 200 || status >= 300) {
        const char *msg = NULL;
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_getfield(L, -1, "message");
            if (lua_type(L, -1) != LUA_TSTRING) {
                lua_pop(L, 1);
                lua_getfield(L, -1, "Message");
            }
            msg = lua_tostring(L, -1);
            lua_pop(L, 1); /* still anchored by the body table */
        }
        err_push(L, "http", "%s", msg ? msg : reason(status));
        lua_insert(L, -2);
        lua_setfield(L, -2, "body");
        goto http_fields;
    }
    if (status == 204) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, &x->head);
    lua_setfield(L, -2, "headers");
    lua_pushnumber(L, x->elapsed);
    lua_setfield(L, -2, "elapsed");
    audit_after(L, x->lp, &u->audit, OUTCOME_OK, status, u->attempts, now_monotonic() - u->started,
                -2, NULL);
    xfer_release(x);
    return 2;

http_fields:
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, x->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    push_headers(L, &x->head);
    lua_setfield(L, -2, "headers");
    {
        size_t n = 0;
        const char *ra = header_value(&x->head, "retry-after", &n);
        char text[64];
        double secs;
        if (retry_after < 0 && ra && n < sizeof text) {
            memcpy(text, ra, n);
            text[n] = '\0';
            if (retry_after_parse(text, time(NULL), &secs) == 0)
                retry_after = secs;
        }
        if (retry_after >= 0) {
            lua_pushnumber(L, retry_after);
            lua_setfield(L, -2, "retry_after");
        }
    }
    mark_outcome(L, u, status >= 200 && status < 300 ? OUTCOME_FAILED : v.outcome);
    xfer_release(x);
    return lua_error(L);
}

static int finish_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return finish(L, (int)ctx);
}


/* [-0, +1] The second result of a call that was not sent: {status=, headers={}, elapsed=0}. */
static void push_meta(lua_State *L, long status, int dry_run)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_newtable(L);
    lua_setfield(L, -2, "headers");
    lua_pushnumber(L, 0);
    lua_setfield(L, -2, "elapsed");
    if (dry_run) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "dry_run");
    }
}

int ecap_call(lua_State *L, struct loop *lp, const struct call *c)
{
    const struct net_options *opts = loop_options(lp);
    const struct limits *lim = loop_limits(lp);
    struct call_ud *u;
    const char *problem, *body = NULL;
    size_t body_len = 0;
    char method[8], err[ERR_TEXT_MAX];
    luaL_Buffer b;
    int ud, pairs = 0, npairs = 0;

    if (strlen(c->method) >= sizeof method)
        err_raise(L, "validation", "unknown HTTP method %s", c->method);
    for (size_t i = 0; i <= strlen(c->method); i++)
        method[i] = (char)toupper((unsigned char)c->method[i]);
    if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "PUT") &&
        strcmp(method, "DELETE") && strcmp(method, "PATCH"))
        err_raise(L, "validation", "unknown HTTP method %s (GET, POST, PUT, PATCH, DELETE)", c->method);
    if ((problem = call_path_problem(c->path)))
        err_raise(L, "validation", "path '%s' %s", c->path, problem);
    if (c->body && strcmp(method, "GET") == 0)
        err_raise(L, "validation", "a GET request takes no body (use opts.query)");

    u = lua_newuserdatauv(L, sizeof *u, 3);
    memset(u, 0, sizeof *u);
    ud = lua_gettop(L);
    if (luaL_newmetatable(L, XFER_MT)) {
        lua_pushcfunction(L, xfer_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "transfer");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, ud);
    lua_pushstring(L, c->path);
    lua_setiuservalue(L, ud, 2);

    if (c->body) {
        size_t n;
        char *enc = json_encode(L, c->body, &n, err, sizeof err);
        if (!enc)
            err_raise(L, "validation", "request body: %s", err);
        lua_pushlstring(L, enc, n);
        json_free(L, enc, n);
        body = lua_tolstring(L, -1, &body_len);
        lua_setiuservalue(L, ud, 1); /* keeps the body alive while curl sends it */
    }
    xfer_init(&u->x, lp);
    if (c->headers)
        add_headers(L, &u->x, c->headers);
    if (c->query) {
        npairs = push_query_pairs(L, c->query);
        pairs = lua_gettop(L);
    }

    luaL_buffinit(L, &b);
    luaL_addstring(&b, opts->base_url);
    luaL_addstring(&b, c->path);
    add_query(L, &b, pairs, npairs);
    luaL_pushresult(&b);
    snprintf(u->operation, sizeof u->operation, "%s", c->operation ? c->operation : "ecap.request");

    u->mutating = strcmp(method, "GET") != 0 && !c->read_only;
    if (u->mutating) { /* the safety layer: mutating calls only */
        const char *url = lua_tostring(L, -1), *q = strchr(url, '?');
        const char *upload = c->file.handle ? c->file.name : NULL;
        if (opts->dry_run) {
            audit_dry_run(L, lp, u->operation, method, url, c->path, c->body, upload, c->file.size,
                          c->preview);
            push_meta(L, 0, 1);
            return 2;
        }
        if (audit_before(L, lp, &u->audit, u->operation, method, c->path, q ? q + 1 : "", c->body,
                         body, body_len, upload ? c->file.fd : -1, upload, c->file.size)) {
            push_meta(L, 200, 0); /* answered from the resumed journal: done before */
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "skipped");
            return 2;
        }
    }

    u->x.max_body = lim->limit ? lim->limit : REPLY_MAX_UNLIMITED;
    if (xfer_prepare(&u->x, lp, method, lua_tostring(L, -1), body, body_len, err, sizeof err))
        raise_oom(L);
    lua_pop(L, 1); /* the URL: curl copied it */
    if (c->file.handle) {
        lua_pushvalue(L, c->file.handle);
        lua_setiuservalue(L, ud, 3); /* keeps the file open while curl reads it */
        if (xfer_set_file(&u->x, c->file.fd, c->file.size, c->file.part, c->file.name, c->file.type,
                          err, sizeof err))
            luaL_error(L, "%s", err);
    }

    u->x.journaled = u->audit.seq > 0;
    u->started = now_monotonic();
    return send_attempt(L, ud);
}
