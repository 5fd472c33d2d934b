/* The run's record of its calls (net/ledger.h): a few small growable lists of strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "ledger.h"

struct strs {
    char **s;
    long *n; /* a count per string (dry-run), or NULL */
    size_t len, cap;
};

struct ledger {
    struct strs unknown, deprecated, dry;
    size_t dry_total, skipped;
    unsigned seed;
    struct journal *journal;
    struct journal_index *resume;
    char run_id[40];
    char *run_line;
    size_t run_line_len;
    long long seq;
};

static void strs_free(struct strs *a)
{
    for (size_t i = 0; i < a->len; i++)
        free(a->s[i]);
    free(a->s);
    free(a->n);
}

static long find(const struct strs *a, const char *s)
{
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->s[i], s) == 0)
            return (long)i;
    return -1;
}

/* Appends a copy of s (with a count of 0). Returns its index, or -1 when out of memory. */
static long add(struct strs *a, const char *s)
{
    char *copy;
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        char **ns = realloc(a->s, cap * sizeof *ns);
        long *nn;
        if (!ns)
            return -1;
        a->s = ns;
        if (!(nn = realloc(a->n, cap * sizeof *nn)))
            return -1;
        a->n = nn;
        a->cap = cap;
    }
    if (!(copy = strdup(s)))
        return -1;
    a->s[a->len] = copy;
    a->n[a->len] = 0;
    return (long)a->len++;
}

struct ledger *ledger_new(void)
{
    struct ledger *lg = calloc(1, sizeof *lg);
    if (lg)
        lg->seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    return lg;
}

void ledger_free(struct ledger *lg)
{
    if (!lg)
        return;
    strs_free(&lg->unknown);
    strs_free(&lg->deprecated);
    strs_free(&lg->dry);
    journal_close(lg->journal);
    free(lg->run_line);
    journal_index_free(lg->resume);
    free(lg);
}

int ledger_note_unknown(struct ledger *lg, const char *operation, const char *method,
                        const char *path)
{
    char line[1024];
    snprintf(line, sizeof line, "%s %s %s", operation, method, path);
    return add(&lg->unknown, line) < 0 ? -1 : 0;
}

size_t ledger_unknown_count(const struct ledger *lg)
{
    return lg->unknown.len;
}

const char *ledger_unknown(const struct ledger *lg, size_t i)
{
    return i < lg->unknown.len ? lg->unknown.s[i] : NULL;
}

int ledger_first_deprecation(struct ledger *lg, const char *operation)
{
    if (find(&lg->deprecated, operation) >= 0)
        return 0;
    add(&lg->deprecated, operation); /* out of memory: warned again next time, harmless */
    return 1;
}

int ledger_count_dry(struct ledger *lg, const char *operation)
{
    long i = find(&lg->dry, operation);
    if (i < 0 && (i = add(&lg->dry, operation)) < 0)
        return -1;
    lg->dry.n[i]++;
    lg->dry_total++;
    return 0;
}

size_t ledger_dry_total(const struct ledger *lg)
{
    return lg->dry_total;
}

void ledger_dry_summary(const struct ledger *lg, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "%zu call%s", lg->dry_total, lg->dry_total == 1 ? "" : "s");
    for (size_t i = 0; i < lg->dry.len && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s: %ld", i ? ", " : " (", lg->dry.s[i], lg->dry.n[i]);
    if (lg->dry.len && n < outlen)
        snprintf(out + n, outlen - n, ")");
}

void ledger_set_journal(struct ledger *lg, struct journal *j, struct journal_index *resume,
                        const char *run_id)
{
    lg->journal = j;
    lg->resume = resume;
    snprintf(lg->run_id, sizeof lg->run_id, "%s", run_id ? run_id : "");
}

struct journal *ledger_journal(const struct ledger *lg)
{
    return lg->journal;
}

struct journal_index *ledger_resume(const struct ledger *lg)
{
    return lg->resume;
}

const char *ledger_run_id(const struct ledger *lg)
{
    return lg->run_id;
}

int ledger_set_run_line(struct ledger *lg, const char *line, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, line, len);
    copy[len] = '\0';
    free(lg->run_line);
    lg->run_line = copy;
    lg->run_line_len = len;
    return 0;
}

const char *ledger_run_line(const struct ledger *lg, size_t *len)
{
    *len = lg->run_line_len;
    return lg->run_line;
}

long long ledger_next_seq(struct ledger *lg)
{
    return ++lg->seq;
}

void ledger_count_skipped(struct ledger *lg)
{
    lg->skipped++;
}

size_t ledger_skipped(const struct ledger *lg)
{
    return lg->skipped;
}

unsigned *ledger_seed(struct ledger *lg)
{
    return &lg->seed;
}
