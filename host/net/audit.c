/* The call journal, --resume and --dry-run on the call path (net/audit.h). Records are built
 * as Lua tables and written with the project's one JSON codec (sorted keys, exact numbers). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <zlib.h>

#include "audit.h"
#include "journal.h"
#include "ledger.h"
#include "lib/errors.h"
#include "lib/json.h"
#include "lib/log.h"
#include "loop.h"
#include "options.h"

#define ERR_MAX 256
#define CRC_CHUNK 65536

/* [-0, +1] The current UTC time, ISO-8601 with milliseconds. */
static void push_time(lua_State *L)
{
    char s[64];
    log_time_ms(s, sizeof s);
    lua_pushstring(L, s);
}

/* [-1, +0] Queues the record table on top as one journal line (and, with lg, keeps it as the
 * run line a reopened file begins with). */
static void append_record_kept(lua_State *L, struct journal *j, struct ledger *lg)
{
    char err[ERR_MAX], *text;
    size_t len;
    if (!(text = json_encode(L, -1, &len, err, sizeof err)))
        err_raise(L, "io", "the call journal: cannot encode a record: %s", err);
    lua_pop(L, 1);
    if (journal_append(j, text, len) || (lg && ledger_set_run_line(lg, text, len))) {
        json_free(L, text, len);
        err_raise(L, "io", "the call journal: out of memory");
    }
    json_free(L, text, len);
}

static void append_record(lua_State *L, struct journal *j)
{
    append_record_kept(L, j, NULL);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v)
        lua_pushstring(L, v);
    else
        json_push_null(L);
    lua_setfield(L, -2, k);
}

int audit_start(lua_State *L, struct loop *lp, const char *script, int argc, char **argv, char *err,
                size_t errlen)
{
    const struct net_options *o = loop_options(lp);
    const char *path = o->journal_path ? o->journal_path : o->resume_path;
    struct journal *j = NULL;
    struct journal_index *idx = NULL;
    char run[40];
    int top = lua_gettop(L);
    if (!path)
        return 0;
    if (o->resume_path && !(idx = journal_index_load(o->resume_path, o->base_url, err, errlen)))
        return -1;
    if (!(j = journal_open(path, err, errlen))) {
        journal_index_free(idx);
        return -1;
    }
    if (journal_warning(j))
        log_host("WARN", "%s", journal_warning(j));
    {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        snprintf(run, sizeof run, "%lx-%lx-%x", (long)tv.tv_sec, (long)tv.tv_usec, (unsigned)getpid());
    }
    ledger_set_journal(loop_ledger(lp), j, idx, run);
    log_offer_run_id(run); /* the run_id of JSON log lines, unless the scheduler gave its own */
    /* the run line: where the calls went and what was run */
    lua_createtable(L, 0, 7);
    lua_pushliteral(L, "run");
    lua_setfield(L, -2, "type");
    set_str(L, "run", run);
    push_time(L);
    lua_setfield(L, -2, "time");
    set_str(L, "script", script);
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    json_mark_array(L, -1);
    lua_setfield(L, -2, "args");
    set_str(L, "base_url", o->base_url);
    set_str(L, "version", ECAP_VERSION);
    append_record_kept(L, j, loop_ledger(lp));
    lua_settop(L, top);
    if (journal_sync(j)) {
        snprintf(err, errlen, "the call journal %s cannot be written: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* zlib's crc32 of the file at fd (read with pread: the upload reads it again from 0). */
static unsigned long file_crc(int fd)
{
    char buf[CRC_CHUNK];
    unsigned long crc = crc32(0L, Z_NULL, 0);
    off_t off = 0;
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        crc = crc32(crc, (const Bytef *)buf, (uInt)n);
        off += n;
    }
    return crc;
}

/* [-0, +1] A new record {type=, run=, seq=, time=} of this run. */
static void push_record(lua_State *L, struct ledger *lg, const char *type, long long seq)
{
    lua_createtable(L, 0, 12);
    set_str(L, "type", type);
    set_str(L, "run", ledger_run_id(lg));
    lua_pushinteger(L, (lua_Integer)seq);
    lua_setfield(L, -2, "seq");
    push_time(L);
    lua_setfield(L, -2, "time");
}

/* Queues the intent line of call a (numbered now) in the run's journal. */
static void append_intent(lua_State *L, struct ledger *lg, struct audit_call *a, const char *operation,
                          const char *method, const char *path, const char *query, int body, int upload)
{
    a->seq = ledger_next_seq(lg);
    push_record(L, lg, "intent", a->seq);
    set_str(L, "operation", operation);
    set_str(L, "method", method);
    set_str(L, "path", path);
    set_str(L, "query", query ? query : "");
    if (body)
        lua_pushvalue(L, body);
    else
        json_push_null(L);
    lua_setfield(L, -2, "body");
    if (upload)
        lua_pushvalue(L, upload);
    else
        json_push_null(L);
    lua_setfield(L, -2, "upload");
    set_str(L, "identity", a->identity);
    append_record(L, ledger_journal(lg));
}

int audit_before(lua_State *L, struct loop *lp, struct audit_call *a, const char *operation,
                 const char *method, const char *path, const char *query, int body,
                 const char *body_text, size_t body_len, int upload_fd, const char *upload_name,
                 long long upload_size)
{
    const struct net_options *o = loop_options(lp);
    struct ledger *lg = loop_ledger(lp);
    struct journal *j = ledger_journal(lg);
    struct journal_index *idx = ledger_resume(lg);
    int top = lua_gettop(L), upload = 0;
    const char *id_body = body_text;
    size_t id_len = body_len;
    memset(a, 0, sizeof *a);
    if (!j && !idx)
        return 0;
    if (upload_fd >= 0) {
        /* the file stands in the journal by name, size and checksum: never its bytes */
        char crc[16], err[ERR_MAX];
        snprintf(crc, sizeof crc, "%08lx", file_crc(upload_fd) & 0xffffffffUL);
        lua_createtable(L, 0, 3);
        set_str(L, "name", upload_name);
        lua_pushinteger(L, (lua_Integer)upload_size);
        lua_setfield(L, -2, "size");
        set_str(L, "crc32", crc);
        upload = lua_gettop(L);
        if (!(id_body = json_encode(L, upload, &id_len, err, sizeof err)))
            err_raise(L, "io", "the call journal: %s", err);
        lua_pushlstring(L, id_body, id_len);
        json_free(L, (char *)id_body, id_len);
        id_body = lua_tolstring(L, -1, &id_len);
    }
    journal_identity(operation, method, path, query, id_body, id_len, a->identity);
    if (idx) {
        enum journal_outcome jo;
        const char *response;
        if (journal_index_take(idx, a->identity, &jo, &response) == 0) {
            if (jo == J_OK) {
                char err[ERR_MAX];
                int v;
                ledger_count_skipped(lg);
                if (!response || json_decode(L, response, strlen(response), err, sizeof err))
                    lua_pushnil(L);
                v = lua_gettop(L);
                if (j) {
                    /* the call as it would have been, then the skip with the journaled reply */
                    append_intent(L, lg, a, operation, method, path, query, body, upload);
                    push_record(L, lg, "outcome", a->seq);
                    lua_pushliteral(L, "skipped");
                    lua_setfield(L, -2, "outcome");
                    set_str(L, "identity", a->identity);
                    set_str(L, "operation", operation);
                    lua_pushvalue(L, v);
                    lua_setfield(L, -2, "response");
                    append_record(L, j);
                }
                lua_copy(L, v, top + 1); /* [-0, +1]: the journaled reply */
                lua_settop(L, top + 1);
                return 1;
            }
            if ((jo == J_UNKNOWN || jo == J_NONE) && !o->resend_unknown)
                err_raise(L, "validation",
                          "%s %s %s: the resumed journal has this call with an unknown outcome (the "
                          "server may have done it): check it by hand, then run with "
                          "--resend-unknown to send it again", operation, method, path);
        }
    }
    if (j)
        append_intent(L, lg, a, operation, method, path, query, body, upload);
    lua_settop(L, top);
    return 0;
}

void audit_after(lua_State *L, struct loop *lp, const struct audit_call *a, enum call_outcome o,
                 long status, int attempts, double duration, int value, const char *error)
{
    struct ledger *lg = loop_ledger(lp);
    struct journal *j = ledger_journal(lg);
    int top = lua_gettop(L);
    if (!j || a->seq == 0)
        return;
    if (value)
        value = lua_absindex(L, value);
    push_record(L, lg, "outcome", a->seq);
    set_str(L, "outcome", retry_outcome_name(o));
    if (status > 0)
        lua_pushinteger(L, status);
    else
        json_push_null(L);
    lua_setfield(L, -2, "status");
    lua_pushinteger(L, attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, duration);
    lua_setfield(L, -2, "duration");
    if (value && !lua_isnil(L, value))
        lua_pushvalue(L, value);
    else
        json_push_null(L);
    lua_setfield(L, -2, "response");
    set_str(L, "error", error);
    append_record(L, j);
    lua_settop(L, top);
    /* Not synced here: the loop syncs every queued line once per turn (net/loop.c), and at the
     * end of the run. An outcome lost to a kill -9 before that leaves its call looking unknown:
     * the safe side. */
}

/* Each line of text, prefixed "preview: ". */
static void print_preview(const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");
        printf("preview: %.*s\n", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

void audit_dry_run(lua_State *L, struct loop *lp, const char *operation, const char *method,
                   const char *url, const char *path, int body, const char *upload_name,
                   long long upload_size, const char *preview)
{
    char err[ERR_MAX];
    if (body)
        body = lua_absindex(L, body);
    printf("DRY-RUN %s %s %s\n", operation, method, url);
    if (upload_name) {
        printf("(file %s, %lld bytes)\n", upload_name, upload_size);
    } else if (body) {
        size_t len;
        char *text = json_encode_pretty(L, body, 2, &len, err, sizeof err);
        if (!text)
            err_raise(L, "validation", "request body: %s", err);
        fwrite(text, 1, len, stdout);
        putchar('\n');
        json_free(L, text, len);
    }
    if (preview)
        print_preview(preview);
    fflush(stdout);
    if (ledger_count_dry(loop_ledger(lp), operation))
        luaL_error(L, "not enough memory");
    if (upload_name) {
        lua_pushfstring(L, "dry-run:upload:%s", upload_name);
        return;
    }
    lua_createtable(L, 0, 5);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "dry_run");
    lua_pushstring(L, operation);
    lua_setfield(L, -2, "operation");
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    if (body) {
        lua_pushvalue(L, body);
        lua_setfield(L, -2, "body");
    }
}
