/* The call journal (see journal.h for the format and the contract).
 *
 * Writer: lines are queued in one malloc'd buffer and written by journal_sync with write(2)
 * (short writes and EINTR resumed) and one fdatasync, so every call started in one turn of the
 * event loop shares one disk flush. The file is opened O_APPEND: a copytruncate by logrotate
 * is harmless, and a rename is followed by journal_reopen (SIGHUP).
 *
 * A crash can cut the last line: the next writer ends it with a newline before its own first
 * record (a run record), and readers skip an undecodable line followed by a run record, as
 * they skip an undecodable last line.
 *
 * Permissions: created 0600 (it holds names, addresses, account numbers). An existing file
 * writable by group or others is refused: anyone who can append to it could forge an "ok"
 * that --resume trusts, and the call would never be sent. One readable by group or others is
 * used (logrotate's `create 0640` is common) with a warning (journal_warning) for the caller to
 * show.
 *
 * Reader: every line decoded by the project's one JSON codec in a private Lua state (closed
 * before journal_index_load returns); the reply is kept as JSON text re-encoded by the same
 * codec (keys sorted), not as the raw substring of the line. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lib/json.h"
#include "lib/regfile.h"
#include "net/journal.h"

#define JOURNAL_BUF_MIN 4096
#define JOURNAL_PERM_WRITE_OTHERS (S_IWGRP | S_IWOTH)
#define JOURNAL_PERM_READ_OTHERS (S_IRGRP | S_IROTH)

struct journal {
    int fd;
    char *path;
    char *buf;          /* queued lines, each with its newline */
    size_t len, cap;
    const char *warning;
};

/* ---- writer ------------------------------------------------------------------------------ */

/* Opens path for appending; refuses what is not a regular file or is writable by others.
 * *torn: the file does not end with a newline (a crash cut its last line). Returns the
 * descriptor, or -1 with errno (EPERM for the permissions, EINVAL for the type). Read-write
 * only to look at the last byte. */
static int open_append(const char *path, const char **warning, int *torn)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
    char last = '\n';
    int e;
    if (fd < 0)
        return -1;
    /* O_NONBLOCK only so that a FIFO cannot hold the open; cleared for the writes */
    if (fstat(fd, &st) != 0 || fcntl(fd, F_SETFL, O_APPEND) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if (st.st_mode & JOURNAL_PERM_WRITE_OTHERS) {
        errno = EPERM;
        goto fail;
    }
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        goto fail;
    *torn = last != '\n';
    *warning = (st.st_mode & JOURNAL_PERM_READ_OTHERS)
                   ? "readable by group or others (it holds names, addresses and account "
                     "numbers: chmod 600 it)"
                   : NULL;
    return fd;
fail:
    e = errno ? errno : EIO;
    close(fd);
    errno = e;
    return -1;
}

static const char *open_why(int e)
{
    if (e == EPERM)
        return "writable by group or others (anyone could forge what --resume trusts: "
               "chmod 600 it)";
    if (e == EINVAL)
        return "not a regular file";
    return strerror(e);
}

/* A torn last line is ended with the first sync, so that the next record starts a line of its
 * own (readers skip an undecodable line followed by a run record). */
static int end_torn_line(struct journal *j, int torn)
{
    return torn ? journal_append(j, "", 0) : 0;
}

struct journal *journal_open(const char *path, char *err, size_t errlen)
{
    struct journal *j = calloc(1, sizeof *j);
    int torn = 0;
    if (!j || !(j->path = strdup(path))) {
        free(j);
        snprintf(err, errlen, "journal %s: out of memory", path);
        return NULL;
    }
    if ((j->fd = open_append(path, &j->warning, &torn)) < 0 || end_torn_line(j, torn) != 0) {
        snprintf(err, errlen, "journal %s: %s", path, j->fd < 0 ? open_why(errno) : strerror(errno));
        if (j->fd >= 0)
            close(j->fd);
        free(j->buf);
        free(j->path);
        free(j);
        return NULL;
    }
    return j;
}

const char *journal_warning(const struct journal *j)
{
    return j->warning;
}

int journal_append(struct journal *j, const char *line, size_t len)
{
    if (memchr(line, '\n', len)) {          /* would cut the record in two */
        errno = EINVAL;
        return -1;
    }
    if (len + 1 > j->cap - j->len) {
        size_t cap = j->cap ? j->cap : JOURNAL_BUF_MIN;
        char *nb;
        while (cap - j->len < len + 1) {
            if (cap > SIZE_MAX / 2) {
                errno = ENOMEM;
                return -1;
            }
            cap *= 2;
        }
        if (!(nb = realloc(j->buf, cap)))
            return -1;
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, line, len);
    j->buf[j->len + len] = '\n';
    j->len += len + 1;
    return 0;
}

int journal_sync(struct journal *j)
{
    size_t done = 0;
    int rc = 0, e = 0;
    if (j->len == 0)
        return 0;
    while (done < j->len) {
        ssize_t n = write(j->fd, j->buf + done, j->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            rc = -1;
            break;
        }
        done += (size_t)n;
    }
    /* keep what was not written, so that a later sync can finish it */
    memmove(j->buf, j->buf + done, j->len - done);
    j->len -= done;
    if (rc == 0) {
        while ((rc = fdatasync(j->fd)) != 0 && errno == EINTR)
            ;
        e = errno;
    }
    errno = e;
    return rc;
}

int journal_pending(const struct journal *j)
{
    return j->len > 0;
}

int journal_reopen(struct journal *j)
{
    const char *warning;
    int fd, torn = 0;
    if (journal_sync(j) != 0)   /* what is queued goes to the file it was queued for */
        return -1;
    if ((fd = open_append(j->path, &warning, &torn)) < 0)
        return -1;
    if (end_torn_line(j, torn) != 0) {
        close(fd);
        return -1;
    }
    close(j->fd);
    j->fd = fd;
    j->warning = warning;
    return 0;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    journal_sync(j);
    close(j->fd);
    free(j->buf);
    free(j->path);
    free(j);
}

/* ---- identity: FNV-1a, 128 bits ------------------------------------------------------------
 * The published FNV-1a 128 (offset basis 0x6c62272e07bb014262b821756295c58d, prime
 * 2^88 + 0x13b), on two 64-bit words: h * prime = (h << 88) + h * 0x13b (mod 2^128). */

#define FNV128_BASIS_HI UINT64_C(0x6c62272e07bb0142)
#define FNV128_BASIS_LO UINT64_C(0x62b821756295c58d)
#define FNV128_PRIME_LO UINT64_C(0x13b)

struct fnv128 {
    uint64_t hi, lo;
};

static void fnv128_bytes(struct fnv128 *h, const unsigned char *p, size_t n)
{
    uint64_t hi = h->hi, lo = h->lo;
    for (size_t i = 0; i < n; i++) {
        uint64_t a, b, carry;
        lo ^= p[i];
        a = lo >> 32;
        b = lo & UINT64_C(0xffffffff);
        carry = (a * FNV128_PRIME_LO + ((b * FNV128_PRIME_LO) >> 32)) >> 32;
        hi = hi * FNV128_PRIME_LO + carry + (lo << 24);
        lo = lo * FNV128_PRIME_LO;
    }
    h->hi = hi;
    h->lo = lo;
}

/* A field and its NUL separator (NULL hashes as ""). */
static void fnv128_field(struct fnv128 *h, const char *s)
{
    static const unsigned char nul = 0;
    if (s)
        fnv128_bytes(h, (const unsigned char *)s, strlen(s));
    fnv128_bytes(h, &nul, 1);
}

void journal_identity(const char *operation, const char *method, const char *path,
                      const char *query, const char *body, size_t body_len, char *out)
{
    struct fnv128 h = {FNV128_BASIS_HI, FNV128_BASIS_LO};
    fnv128_field(&h, operation);
    fnv128_field(&h, method);
    fnv128_field(&h, path);
    fnv128_field(&h, query);
    if (body)
        fnv128_bytes(&h, (const unsigned char *)body, body_len);
    snprintf(out, JOURNAL_ID_LEN, "%016llx%016llx", (unsigned long long)h.hi,
             (unsigned long long)h.lo);
}

/* ---- reader: a string-keyed hash table (open addressing) ------------------------------------ */

struct smap_slot {
    char *key;          /* owned; NULL = empty */
    size_t value;
};

struct smap {
    struct smap_slot *slots;
    size_t cap, n;      /* cap a power of two, at most half full */
};

static size_t smap_hash(const char *k)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);  /* FNV-1a 64 */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * UINT64_C(0x100000001b3);
    return (size_t)h;
}

static struct smap_slot *smap_find(const struct smap *m, const char *key)
{
    size_t i;
    if (m->cap == 0)
        return NULL;
    for (i = smap_hash(key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
        if (strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
    return &m->slots[i];
}

static int smap_grow(struct smap *m)
{
    struct smap old = *m;
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (!(m->slots = calloc(cap, sizeof *m->slots))) {
        *m = old;
        return -1;
    }
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            *smap_find(m, old.slots[i].key) = old.slots[i];
    free(old.slots);
    return 0;
}

/* The value of key, or (added = 1) a new entry of value v. Returns NULL when out of memory. */
static struct smap_slot *smap_get(struct smap *m, const char *key, size_t v, int *added)
{
    struct smap_slot *s = smap_find(m, key);
    *added = 0;
    if (s && s->key)
        return s;
    if ((m->n + 1) * 2 > m->cap) {
        if (smap_grow(m) != 0)
            return NULL;
        s = smap_find(m, key);
    }
    if (!(s->key = strdup(key)))
        return NULL;
    s->value = v;
    m->n++;
    *added = 1;
    return s;
}

static void smap_free(struct smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
}

/* ---- reader: the index -------------------------------------------------------------------- */

/* What one occurrence of an identity came to, over every run of the journal. */
struct occurrence {
    int seen;           /* a call of this occurrence was merged */
    enum journal_outcome outcome;
    const char *response;
};

struct group {
    struct occurrence *occ;
    size_t n, cap, taken;
};

struct journal_index {
    struct journal_call *calls;  /* in the order of their intents */
    size_t ncalls, capcalls, runs;
    struct smap pending;         /* "seq:run" -> call, the intents read so far */
    struct smap by_identity;     /* identity -> group */
    struct group *groups;
    size_t ngroups, capgroups;
};

struct loader {
    struct journal_index *idx;
    const char *path, *base_url;
    FILE *f;
    char *line;
    size_t linecap, lineno;
    size_t torn_line;    /* an undecodable line: torn if the next is a run record */
    char torn_err[200];
    char *err;
    size_t errlen;
};

static int load_fail(struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "journal PATH: line N: <message>" into the loader's err; returns -1. */
static int load_fail(struct loader *ld, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "journal %s: line %zu: %s", ld->path, ld->lineno, msg);
    return -1;
}

static int out_of_memory(struct loader *ld)
{
    snprintf(ld->err, ld->errlen, "journal %s: out of memory", ld->path);
    return -1;
}

/* Grows an array of n used elements to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    void *na;
    size_t nc;
    if (n < *cap)
        return 0;
    nc = *cap ? *cap * 2 : 16;
    if (nc > SIZE_MAX / size || !(na = realloc(*arr, nc * size)))
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

/* [-0, +0] A copy of the record's (at -1) string field key into *out; NULL when absent or null
 * and not required. Numbers are taken as their text (a run id may be a number). */
static int text_field(struct loader *ld, lua_State *L, const char *key, int required, char **out)
{
    int t = lua_getfield(L, -1, key);
    *out = NULL;
    if ((t == LUA_TNIL || json_is_null(L, -1)) && !required) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
        lua_pop(L, 1);
        return load_fail(ld, "\"%s\" missing or not a string", key);
    }
    *out = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return *out ? 0 : out_of_memory(ld);
}

/* [-0, +0] The record's (at -1) integer field "seq". */
static int seq_field(struct loader *ld, lua_State *L, long long *seq)
{
    int ok;
    lua_getfield(L, -1, "seq");
    *seq = (long long)lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    return ok ? 0 : load_fail(ld, "\"seq\" missing or not an integer");
}

static void call_free(struct journal_call *c)
{
    free((char *)c->run);
    free((char *)c->time);
    free((char *)c->operation);
    free((char *)c->method);
    free((char *)c->path);
    free((char *)c->query);
    free((char *)c->identity);
    free((char *)c->response);
}

static int pair_key(char *key, size_t size, const char *run, long long seq)
{
    return snprintf(key, size, "%lld:%s", seq, run) < (int)size ? 0 : -1;
}

#define PAIR_KEY_MAX 320

/* [-0, +0] An intent record (at -1): a new call, pending its outcome. */
static int read_intent(struct loader *ld, lua_State *L)
{
    struct journal_index *idx = ld->idx;
    struct journal_call *c;
    struct smap_slot *s;
    char key[PAIR_KEY_MAX];
    int added;
    if (grow((void **)&idx->calls, &idx->capcalls, idx->ncalls, sizeof *idx->calls) != 0)
        return out_of_memory(ld);
    c = &idx->calls[idx->ncalls++];
    memset(c, 0, sizeof *c);     /* counted at once, so freed whatever fails below */
    c->line = ld->lineno;
    c->outcome = J_NONE;
    if (text_field(ld, L, "run", 1, (char **)&c->run) || seq_field(ld, L, &c->seq)
        || text_field(ld, L, "time", 0, (char **)&c->time)
        || text_field(ld, L, "operation", 1, (char **)&c->operation)
        || text_field(ld, L, "method", 1, (char **)&c->method)
        || text_field(ld, L, "path", 1, (char **)&c->path)
        || text_field(ld, L, "query", 0, (char **)&c->query)
        || text_field(ld, L, "identity", 1, (char **)&c->identity))
        return -1;
    if (strlen(c->identity) != JOURNAL_ID_LEN - 1)
        return load_fail(ld, "\"identity\" is not %d hex digits", JOURNAL_ID_LEN - 1);
    if (pair_key(key, sizeof key, c->run, c->seq) != 0)
        return load_fail(ld, "\"run\" too long");
    if (!(s = smap_get(&idx->pending, key, idx->ncalls - 1, &added)))
        return out_of_memory(ld);
    if (!added)
        return load_fail(ld, "a second intent for run %s seq %lld", c->run, c->seq);
    return 0;
}

static const char *const outcome_names[] = {"", "ok", "failed", "unknown", "not sent", "skipped"};

const char *journal_outcome_name(enum journal_outcome o)
{
    return o == J_NONE ? "unknown" : outcome_names[o];
}

/* [-0, +0] An outcome record (at -1): completes its intent's call. */
static int read_outcome(struct loader *ld, lua_State *L)
{
    struct journal_call *c;
    struct smap_slot *s;
    char key[PAIR_KEY_MAX], *run, err[128], *text;
    long long seq;
    const char *name;
    size_t len;
    int o;
    int rc;
    if (text_field(ld, L, "run", 1, &run))
        return -1;
    if ((rc = seq_field(ld, L, &seq)) == 0 && pair_key(key, sizeof key, run, seq) != 0)
        rc = load_fail(ld, "\"run\" too long");
    if (rc == 0 && (!(s = smap_find(&ld->idx->pending, key)) || !s->key))
        rc = load_fail(ld, "an outcome without its intent (run %s seq %lld)", run, seq);
    free(run);
    if (rc != 0)
        return -1;
    c = &ld->idx->calls[s->value];
    if (c->outcome != J_NONE)
        return load_fail(ld, "a second outcome for the call of line %zu", c->line);
    lua_getfield(L, -1, "outcome");
    name = lua_tostring(L, -1);
    for (o = J_OK; name && o <= J_SKIPPED && strcmp(name, outcome_names[o]) != 0; o++)
        ;
    lua_pop(L, 1);
    if (!name || o > J_SKIPPED)
        return load_fail(ld, "\"outcome\" is not ok, failed, unknown, not sent or skipped");
    c->outcome = (enum journal_outcome)o;
    lua_getfield(L, -1, "response");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!(text = json_encode(L, -1, &len, err, sizeof err))) {
        lua_pop(L, 1);
        return load_fail(ld, "\"response\": %s", err);
    }
    c->response = malloc(len + 1);
    if (c->response)
        memcpy((char *)c->response, text, len + 1);
    json_free(L, text, len);
    lua_pop(L, 1);
    return c->response ? 0 : out_of_memory(ld);
}

/* [-0, +0] A run record (at -1): the first one names the host the journal was written for. */
static int read_run(struct loader *ld, lua_State *L)
{
    const char *url;
    if (ld->idx->runs++ > 0 || !ld->base_url)
        return 0;
    lua_getfield(L, -1, "base_url");
    url = lua_tostring(L, -1);
    if (!url || strcmp(url, ld->base_url) != 0) {
        snprintf(ld->err, ld->errlen,
                 "journal %s was written against %s, not %s: --resume refuses it", ld->path,
                 url ? url : "(no base_url)", ld->base_url);
        lua_pop(L, 1);
        return -1;
    }
    lua_pop(L, 1);
    return 0;
}

/* [-0, +0] One line. torn: it is the last and has no newline (skipped if it does not parse). */
/* The undecodable line held back, now known not to be a crashed run's torn end: an error. */
static int torn_fail(struct loader *ld)
{
    snprintf(ld->err, ld->errlen, "journal %s: line %zu: not a JSON record: %s", ld->path,
             ld->torn_line, ld->torn_err);
    return -1;
}

/* [-0, +0] One line. last_torn: it is the last and has no newline (skipped if it does not
 * decode). An undecodable line followed by a run record is skipped too: the torn end of a
 * crashed run, which the next writer ended with a newline (journal_open). */
static int read_line(struct loader *ld, lua_State *L, size_t len, int last_torn)
{
    char err[sizeof ld->torn_err];
    const char *type = NULL;
    int rc;
    if (json_decode(L, ld->line, len, err, sizeof err) != 0) {
        if (ld->torn_line)
            return torn_fail(ld);
        if (!last_torn) {
            ld->torn_line = ld->lineno;
            memcpy(ld->torn_err, err, sizeof err);
        }
        return 0;
    }
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "type");
        type = lua_tostring(L, -1);
        lua_pop(L, 1);   /* the string stays in the record table, so type stays valid */
    }
    if (ld->torn_line) {
        if (!type || strcmp(type, "run") != 0) {
            lua_pop(L, 1);
            return torn_fail(ld);
        }
        ld->torn_line = 0;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return load_fail(ld, "not a JSON object");
    }
    if (type && strcmp(type, "run") == 0)
        rc = read_run(ld, L);
    else if (ld->idx->runs == 0)
        rc = load_fail(ld, "the journal does not start with a \"run\" record");
    else if (type && strcmp(type, "intent") == 0)
        rc = read_intent(ld, L);
    else if (type && strcmp(type, "outcome") == 0)
        rc = read_outcome(ld, L);
    else
        rc = load_fail(ld, "\"type\" is not run, intent or outcome");
    lua_pop(L, 1);
    return rc;
}

/* Merges a call into its occurrence: ok and skipped are final (done); "not sent" tells nothing
 * about an earlier attempt; otherwise the latest attempt says. */
static void merge(struct occurrence *o, const struct journal_call *c)
{
    if (o->outcome == J_OK)
        return;
    if (c->outcome == J_OK || c->outcome == J_SKIPPED) {
        o->outcome = J_OK;
        o->response = c->response;
    } else if (c->outcome != J_NOT_SENT || !o->seen) {
        o->outcome = c->outcome;
        o->response = NULL;
    }
    o->seen = 1;
}

/* Groups the calls by identity; the k-th call of an identity in each run is its k-th
 * occurrence (a resumed run runs the script again from the top). */
static int build_groups(struct loader *ld)
{
    struct journal_index *idx = ld->idx;
    struct smap per_run = {0};   /* "identity:run" -> how many seen */
    char key[PAIR_KEY_MAX + JOURNAL_ID_LEN];
    int rc = 0;
    for (size_t i = 0; i < idx->ncalls && rc == 0; i++) {
        const struct journal_call *c = &idx->calls[i];
        struct smap_slot *g, *r;
        struct group *gr;
        int added;
        snprintf(key, sizeof key, "%s:%s", c->identity, c->run);
        /* room for a new group first, so that an identity in the map always has one */
        if (grow((void **)&idx->groups, &idx->capgroups, idx->ngroups, sizeof *idx->groups)
            || !(r = smap_get(&per_run, key, 0, &added))
            || !(g = smap_get(&idx->by_identity, c->identity, idx->ngroups, &added))) {
            rc = out_of_memory(ld);
            break;
        }
        if (added)
            memset(&idx->groups[idx->ngroups++], 0, sizeof *idx->groups);
        gr = &idx->groups[g->value];
        if (r->value == gr->n) {
            if (grow((void **)&gr->occ, &gr->cap, gr->n, sizeof *gr->occ)) {
                rc = out_of_memory(ld);
                break;
            }
            memset(&gr->occ[gr->n++], 0, sizeof *gr->occ);
        }
        merge(&gr->occ[r->value++], c);
    }
    smap_free(&per_run);
    return rc;
}

/* Under lua_pcall (a memory error of the codec lands there): reads every line. */
static int load_lines(lua_State *L)
{
    struct loader *ld = lua_touserdata(L, 1);
    ssize_t n;
    errno = 0;
    while ((n = getline(&ld->line, &ld->linecap, ld->f)) > 0) {
        int torn = ld->line[n - 1] != '\n';
        ld->lineno++;
        if (read_line(ld, L, (size_t)(torn ? n : n - 1), torn) != 0) {
            lua_pushboolean(L, 0);
            return 1;
        }
    }
    if (ld->torn_line) {
        lua_pushboolean(L, torn_fail(ld) == 0);
        return 1;
    }
    if (ferror(ld->f)) {
        snprintf(ld->err, ld->errlen, "journal %s: %s", ld->path, strerror(errno));
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, build_groups(ld) == 0);
    return 1;
}

struct journal_index *journal_index_load(const char *path, const char *base_url, char *err,
                                         size_t errlen)
{
    struct loader ld = {0};
    lua_State *L;
    int ok = 0;
    ld.path = path;
    ld.base_url = base_url;
    ld.err = err;
    ld.errlen = errlen;
    if (!(ld.f = regfile_open(path))) {
        snprintf(err, errlen, "journal %s: %s", path, regfile_why(errno));
        return NULL;
    }
    if (!(ld.idx = calloc(1, sizeof *ld.idx)) || !(L = luaL_newstate())) {
        fclose(ld.f);
        free(ld.idx);
        snprintf(err, errlen, "journal %s: out of memory", path);
        return NULL;
    }
    lua_pushcfunction(L, load_lines);
    lua_pushlightuserdata(L, &ld);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        snprintf(err, errlen, "journal %s: line %zu: %s", path, ld.lineno, lua_tostring(L, -1));
    else
        ok = lua_toboolean(L, -1);
    lua_close(L);
    fclose(ld.f);
    free(ld.line);
    if (!ok) {
        journal_index_free(ld.idx);
        return NULL;
    }
    return ld.idx;
}

int journal_index_take(struct journal_index *idx, const char *identity,
                       enum journal_outcome *outcome, const char **response)
{
    struct smap_slot *s = smap_find(&idx->by_identity, identity);
    struct group *g;
    struct occurrence *o;
    if (!s || !s->key)
        return -1;
    g = &idx->groups[s->value];
    if (g->taken >= g->n)
        return -1;
    o = &g->occ[g->taken++];
    *outcome = o->outcome;
    *response = o->response ? o->response : "null";
    return 0;
}

size_t journal_index_count(const struct journal_index *idx)
{
    return idx->ncalls;
}

const struct journal_call *journal_index_call(const struct journal_index *idx, size_t i)
{
    return i < idx->ncalls ? &idx->calls[i] : NULL;
}

size_t journal_index_runs(const struct journal_index *idx)
{
    return idx->runs;
}

void journal_index_free(struct journal_index *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->ncalls; i++)
        call_free(&idx->calls[i]);
    free(idx->calls);
    for (size_t i = 0; i < idx->ngroups; i++)
        free(idx->groups[i].occ);
    free(idx->groups);
    smap_free(&idx->pending);
    smap_free(&idx->by_identity);
    free(idx);
}
