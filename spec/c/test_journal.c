/* Tests of the call journal (host/net/journal.c): the writer (mode 0600, content, one line set
 * per sync, refused permissions), the identity (fixed vectors, sensitivity, field boundaries)
 * and the reader (pairing, grouping and occurrences over runs, a torn last line, a malformed
 * line named, a journal of another host refused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "net/journal.h"

static char dir[] = "/tmp/test_journal.XXXXXX";
static char path[256];

static char *slurp(const char *p)
{
    static char buf[8192];
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static void spit(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    chmod(p, 0600);
}

static int append(struct journal *j, const char *line)
{
    return journal_append(j, line, strlen(line));
}

static void test_writer(void)
{
    char err[256];
    struct stat st;
    struct journal *j;
    snprintf(path, sizeof path, "%s/j.jsonl", dir);
    umask(022);
    j = journal_open(path, err, sizeof err);
    CHECK(j != NULL);
    if (!j)
        return;
    CHECK(journal_warning(j) == NULL);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(!journal_pending(j));
    CHECK(append(j, "{\"a\":1}") == 0 && append(j, "{\"b\":2}") == 0);
    CHECK(journal_pending(j));
    CHECK(strcmp(slurp(path), "") == 0);                 /* nothing before the sync */
    CHECK(journal_sync(j) == 0 && !journal_pending(j));
    CHECK(strcmp(slurp(path), "{\"a\":1}\n{\"b\":2}\n") == 0);   /* both lines, one sync */
    CHECK(journal_sync(j) == 0);                         /* nothing queued: nothing written */
    CHECK(journal_append(j, "{\"c\":\n3}", 8) == -1);    /* a newline would cut a record */
    /* many lines: the buffer grows */
    for (int i = 0; i < 1000; i++)
        CHECK(append(j, "{\"x\":\"0123456789012345678901234567890123456789\"}") == 0);
    CHECK(journal_sync(j) == 0);
    CHECK(stat(path, &st) == 0 && st.st_size == 16 + 1000 * 49);
    /* logrotate: rename, reopen, the new lines go to a new file of mode 0600 */
    {
        char moved[300];
        snprintf(moved, sizeof moved, "%s.1", path);
        CHECK(rename(path, moved) == 0);
        CHECK(append(j, "{\"old\":1}") == 0);
        CHECK(journal_reopen(j) == 0);
        CHECK(append(j, "{\"new\":1}") == 0);
        journal_close(j);                                /* close syncs */
        CHECK(strcmp(slurp(path), "{\"new\":1}\n") == 0);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(stat(moved, &st) == 0 && st.st_size == 16 + 1000 * 49 + 10);
        unlink(moved);
    }
    /* an existing file: appended to; readable by others: a warning; writable: refused */
    chmod(path, 0640);
    j = journal_open(path, err, sizeof err);
    CHECK(j != NULL && journal_warning(j) != NULL);
    if (j) {
        CHECK(append(j, "{\"again\":1}") == 0);
        journal_close(j);
    }
    CHECK(strcmp(slurp(path), "{\"new\":1}\n{\"again\":1}\n") == 0);
    chmod(path, 0620);
    CHECK(journal_open(path, err, sizeof err) == NULL && strstr(err, "writable by group") != NULL);
    CHECK(journal_open(dir, err, sizeof err) == NULL);   /* a directory */
    {   /* a FIFO without a reader: refused at once, not waited for */
        char fifo[300];
        snprintf(fifo, sizeof fifo, "%s/fifo", dir);
        CHECK(mkfifo(fifo, 0600) == 0);
        CHECK(journal_open(fifo, err, sizeof err) == NULL && strstr(err, "not a regular file"));
        unlink(fifo);
    }
    unlink(path);
    journal_close(NULL);
}

static void id(const char *op, const char *m, const char *p, const char *q, const char *body,
               char *out)
{
    journal_identity(op, m, p, q, body, body ? strlen(body) : 0, out);
}

static void test_identity(void)
{
    char a[JOURNAL_ID_LEN], b[JOURNAL_ID_LEN];
    const char *f[5] = {"meters.apply_release", "POST", "/api/v3/meter/1/release", "a=1",
                        "{\"x\":1}"};
    /* fixed vectors: FNV-1a 128 of "a\0b\0c\0d\0e" and of "\0\0\0\0" (computed with
     * Python integers: x = 0x6c62...c58d; per byte x = ((x ^ b) * (2**88 + 0x13b)) % 2**128) */
    id("a", "b", "c", "d", "e", a);
    CHECK(strlen(a) == 32);
    CHECK(strcmp(a, "bc56391e2d061a58c2a82e3d2103c864") == 0);
    id(NULL, NULL, NULL, NULL, NULL, a);
    CHECK(strcmp(a, "66ad387c16757277b806e89d2e80f03d") == 0);
    id("", "", "", "", "", b);
    CHECK(strcmp(a, b) == 0);
    /* stable */
    id(f[0], f[1], f[2], f[3], f[4], a);
    id(f[0], f[1], f[2], f[3], f[4], b);
    CHECK(strcmp(a, b) == 0);
    /* one byte changed in any field changes it */
    for (int k = 0; k < 5; k++) {
        char changed[64], *g[5];
        for (int i = 0; i < 5; i++)
            g[i] = (char *)f[i];
        snprintf(changed, sizeof changed, "%s", f[k]);
        changed[strlen(changed) - 1] ^= 1;
        g[k] = changed;
        id(g[0], g[1], g[2], g[3], g[4], b);
        CHECK(strcmp(a, b) != 0);
    }
    /* field boundaries matter */
    id("ab", "c", "", "", "", a);
    id("a", "bc", "", "", "", b);
    CHECK(strcmp(a, b) != 0);
    id("x", "POST", "/p", "", "1", a);
    id("x", "POST", "/p", "1", "", b);
    CHECK(strcmp(a, b) != 0);
    /* the body is taken by length */
    journal_identity("x", "POST", "/p", "", "{}zz", 2, a);
    id("x", "POST", "/p", "", "{}", b);
    CHECK(strcmp(a, b) == 0);
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define RUN(r) "{\"type\":\"run\",\"run\":\"" r "\",\"base_url\":\"http://h\",\"args\":[]}\n"
#define INTENT(r, s, id)                                                                   \
    "{\"type\":\"intent\",\"run\":\"" r "\",\"seq\":" #s ",\"time\":\"t\",\"operation\":\"op\"," \
    "\"method\":\"POST\",\"path\":\"/api/x\",\"query\":\"\",\"body\":null,\"identity\":\"" id "\"}\n"
#define OUTCOME(r, s, o, resp)                                                             \
    "{\"type\":\"outcome\",\"run\":\"" r "\",\"seq\":" #s ",\"outcome\":\"" o "\","          \
    "\"response\":" resp "}\n"

static struct journal_index *load(const char *text, const char *base, char *err)
{
    spit(path, text);
    return journal_index_load(path, base, err, 256);
}

static int take(struct journal_index *idx, const char *identity, enum journal_outcome want,
                const char *want_resp)
{
    enum journal_outcome o;
    const char *resp;
    if (journal_index_take(idx, identity, &o, &resp) != 0)
        return 0;
    return o == want && strcmp(resp, want_resp) == 0;
}

static void test_reader(void)
{
    char err[256];
    enum journal_outcome o;
    const char *resp;
    struct journal_index *idx;
    snprintf(path, sizeof path, "%s/r.jsonl", dir);
    /* one run: pairing by (run, seq) whatever the order of the outcomes, grouping */
    idx = load(RUN("r1") INTENT("r1", 1, ID_A) INTENT("r1", 2, ID_A) INTENT("r1", 3, ID_B)
               OUTCOME("r1", 2, "failed", "null") OUTCOME("r1", 1, "ok", "{\"b\":[1,2],\"a\":{}}")
               INTENT("r1", 4, ID_A),
               "http://h", err);
    CHECK(idx != NULL);
    if (!idx) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(journal_index_count(idx) == 4 && journal_index_runs(idx) == 1);
    CHECK(journal_index_call(idx, 0)->outcome == J_OK && journal_index_call(idx, 0)->line == 2);
    CHECK(journal_index_call(idx, 2)->outcome == J_NONE);
    CHECK(strcmp(journal_index_call(idx, 3)->identity, ID_A) == 0);
    CHECK(journal_index_call(idx, 4) == NULL);
    CHECK(take(idx, ID_A, J_OK, "{\"a\":{},\"b\":[1,2]}"));   /* re-encoded, keys sorted */
    CHECK(take(idx, ID_A, J_FAILED, "null"));
    CHECK(take(idx, ID_A, J_NONE, "null"));                  /* no outcome: unknown */
    CHECK(journal_index_take(idx, ID_A, &o, &resp) == -1);
    CHECK(take(idx, ID_B, J_NONE, "null"));
    CHECK(journal_index_take(idx, ID_B, &o, &resp) == -1);
    CHECK(journal_index_take(idx, "cccccccccccccccccccccccccccccccc", &o, &resp) == -1);
    journal_index_free(idx);

    /* two runs: the k-th call of each run is the k-th occurrence; ok/skipped are final,
     * "not sent" hides no earlier attempt, else the latest attempt counts */
    idx = load(RUN("r1") INTENT("r1", 1, ID_A) OUTCOME("r1", 1, "ok", "1")
               INTENT("r1", 2, ID_A) INTENT("r1", 3, ID_A) OUTCOME("r1", 3, "failed", "null")
               INTENT("r1", 4, ID_B)
               RUN("r2") INTENT("r2", 1, ID_A) OUTCOME("r2", 1, "skipped", "1")
               INTENT("r2", 2, ID_A) OUTCOME("r2", 2, "not sent", "null")
               INTENT("r2", 3, ID_A) OUTCOME("r2", 3, "ok", "3")
               INTENT("r2", 4, ID_B) OUTCOME("r2", 4, "failed", "null"),
               "http://h", err);
    CHECK(idx != NULL);
    if (idx) {
        CHECK(journal_index_runs(idx) == 2 && journal_index_count(idx) == 8);
        CHECK(take(idx, ID_A, J_OK, "1"));
        CHECK(take(idx, ID_A, J_NONE, "null"));   /* r1 left it unknown; r2 did not send */
        CHECK(take(idx, ID_A, J_OK, "3"));
        CHECK(journal_index_take(idx, ID_A, &o, &resp) == -1);
        CHECK(take(idx, ID_B, J_FAILED, "null"));
        journal_index_free(idx);
    }

    /* a torn last line is skipped; the same line complete is not */
    idx = load(RUN("r1") INTENT("r1", 1, ID_A) "{\"type\":\"outcome\",\"run\":\"r1\",\"se",
               "http://h", err);
    CHECK(idx != NULL && take(idx, ID_A, J_NONE, "null"));
    journal_index_free(idx);
    idx = load(RUN("r1") INTENT("r1", 1, ID_A) "{\"type\":\"outcome\",\"run\":\"r1\",\"se\n"
               INTENT("r1", 2, ID_A), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 3:") != NULL);
    /* a malformed record in the middle: named by its line */
    idx = load(RUN("r1") INTENT("r1", 1, ID_A) OUTCOME("r1", 1, "maybe", "null"), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 3:") && strstr(err, "\"outcome\""));
    idx = load(RUN("r1") OUTCOME("r1", 7, "ok", "null"), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2: an outcome without its intent"));
    idx = load(RUN("r1") INTENT("r1", 1, "abc"), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2:") && strstr(err, "identity"));
    idx = load(INTENT("r1", 1, ID_A), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 1:") && strstr(err, "run"));
    idx = load(RUN("r1") "1\n", "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2: not a JSON object"));
    idx = load(RUN("r1") "[1,2]\n", "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2: \"type\""));
    /* another host: refused, naming it; NULL: not checked */
    idx = load(RUN("r1"), "https://prod", err);
    CHECK(idx == NULL && strstr(err, "written against http://h") != NULL);
    idx = load(RUN("r1"), NULL, err);
    CHECK(idx != NULL);
    journal_index_free(idx);
    /* an empty journal is fine; a missing one is not */
    idx = load("", "http://h", err);
    CHECK(idx != NULL && journal_index_count(idx) == 0);
    journal_index_free(idx);
    unlink(path);
    CHECK(journal_index_load(path, NULL, err, sizeof err) == NULL && strstr(err, path));
    journal_index_free(NULL);
}

/* A crash cut the last line; the next writer ends it, and readers skip it before the run line,
 * but not before another record. */
static void test_torn_then_append(void)
{
    char err[256];
    struct journal *j;
    struct journal_index *idx;
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    spit(path, RUN("r1") INTENT("r1", 1, ID_A) "{\"type\":\"outc");
    CHECK((j = journal_open(path, err, sizeof err)) != NULL);
    if (!j)
        return;
    CHECK(journal_pending(j));
    CHECK(append(j, "{\"base_url\":\"http://h\",\"run\":\"r2\",\"type\":\"run\"}") == 0);
    journal_close(j);
    CHECK(strcmp(slurp(path), RUN("r1") INTENT("r1", 1, ID_A) "{\"type\":\"outc\n"
                              "{\"base_url\":\"http://h\",\"run\":\"r2\",\"type\":\"run\"}\n") == 0);
    idx = journal_index_load(path, "http://h", err, sizeof err);
    CHECK(idx != NULL && journal_index_runs(idx) == 2 && take(idx, ID_A, J_NONE, "null"));
    journal_index_free(idx);
    /* an undecodable line before anything else than a run line is an error, and so is one
     * ending the journal with its newline */
    idx = load(RUN("r1") "{\"type\":\"outc\n" OUTCOME("r1", 1, "ok", "null"), "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2: not a JSON record"));
    idx = load(RUN("r1") "{\"type\":\"outc\n", "http://h", err);
    CHECK(idx == NULL && strstr(err, "line 2: not a JSON record"));
    /* a file that ends well gets no extra newline */
    CHECK((j = journal_open(path, err, sizeof err)) != NULL && !journal_pending(j));
    journal_close(j);
    unlink(path);
}

/* The writer's lines read back by the reader. */
static void test_round_trip(void)
{
    char err[256], ident[JOURNAL_ID_LEN], line[512];
    struct journal *j;
    struct journal_index *idx;
    snprintf(path, sizeof path, "%s/w.jsonl", dir);
    journal_identity("op", "POST", "/api/x", "", "{\"a\":1}", 7, ident);
    CHECK((j = journal_open(path, err, sizeof err)) != NULL);
    if (!j)
        return;
    CHECK(append(j, "{\"base_url\":\"http://h\",\"run\":\"r\",\"type\":\"run\"}") == 0);
    snprintf(line, sizeof line,
             "{\"body\":{\"a\":1},\"identity\":\"%s\",\"method\":\"POST\",\"operation\":\"op\","
             "\"path\":\"/api/x\",\"query\":\"\",\"run\":\"r\",\"seq\":1,\"type\":\"intent\"}", ident);
    CHECK(append(j, line) == 0 && journal_sync(j) == 0);
    CHECK(append(j, "{\"outcome\":\"ok\",\"response\":{\"id\":5},\"run\":\"r\",\"seq\":1,"
                    "\"type\":\"outcome\"}") == 0);
    journal_close(j);
    idx = journal_index_load(path, "http://h", err, sizeof err);
    CHECK(idx != NULL && take(idx, ident, J_OK, "{\"id\":5}"));
    journal_index_free(idx);
    unlink(path);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_writer();
    test_identity();
    test_reader();
    test_round_trip();
    test_torn_then_append();
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
