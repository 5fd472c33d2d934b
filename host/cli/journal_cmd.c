/* `ecaphost journal FILE [--json]`: what a journal says was done, for the operator after a
 * crash or a failed run: per operation how many calls came out ok, failed, unknown (an intent
 * without an outcome counts as unknown), not sent or skipped, then every call whose outcome is
 * unknown -- the ones to check by hand. Reads the file only, never the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "cli/journal_cmd.h"
#include "lib/json.h"
#include "lib/text.h"
#include "net/journal.h"
#include "run/exit_codes.h"

#define JOURNAL_ERR_MAX 512
#define N_OUTCOMES (J_SKIPPED + 1)   /* counted by enum journal_outcome; J_NONE adds to unknown */

static const char journal_usage[] =
    "usage: ecaphost journal [--json] FILE\n"
    "Summarises a call journal (--journal FILE): per operation the calls that came out ok,\n"
    "failed, unknown (sent, fate unknown: an intent without an outcome), not sent or skipped,\n"
    "then every unknown call (time, run, operation, method, path, identity): check those by\n"
    "hand. --json: one JSON object. Reads the file only.\n"
    "Exit codes: 0 no unknown call, 1 some unknown calls, 2 usage error, 3 unreadable or\n"
    "            malformed journal (the message names the line), or out of memory.\n";

struct op_count {
    const char *name;
    long n[N_OUTCOMES];
};

struct summary {
    const struct journal_index *idx;
    struct op_count *ops;
    size_t nops;
    long unknown;
    int json;
};

static enum journal_outcome counted_as(enum journal_outcome o)
{
    return o == J_NONE ? J_UNKNOWN : o;
}

static int op_cmp(const void *a, const void *b)
{
    return strcmp(((const struct op_count *)a)->name, ((const struct op_count *)b)->name);
}

/* Counts the calls per operation (sorted by name). Returns 0 or -1 (out of memory). */
static int count(struct summary *s)
{
    size_t n = journal_index_count(s->idx);
    if (n && !(s->ops = calloc(n, sizeof *s->ops)))   /* at most one operation per call */
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct journal_call *c = journal_index_call(s->idx, i);
        size_t k = 0;
        while (k < s->nops && strcmp(s->ops[k].name, c->operation) != 0)
            k++;
        if (k == s->nops)
            s->ops[s->nops++].name = c->operation;
        s->ops[k].n[counted_as(c->outcome)]++;
        s->unknown += counted_as(c->outcome) == J_UNKNOWN;
    }
    if (s->nops)
        qsort(s->ops, s->nops, sizeof *s->ops, op_cmp);
    return 0;
}

/* Prints s (from the journal: untrusted) as one line-safe field. */
static void put_text(lua_State *L, const char *s)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    text_escape(&b, s ? s : "-", s ? strlen(s) : 1, TEXT_ALL);
    luaL_pushresult(&b);
    fputs(lua_tostring(L, -1), stdout);
    lua_pop(L, 1);
}

static void print_text(lua_State *L, const struct summary *s)
{
    static const enum journal_outcome cols[] = {J_OK, J_FAILED, J_UNKNOWN, J_NOT_SENT, J_SKIPPED};
    size_t n = journal_index_count(s->idx);
    printf("%zu run%s, %zu call%s\n", journal_index_runs(s->idx),
           journal_index_runs(s->idx) == 1 ? "" : "s", n, n == 1 ? "" : "s");
    if (s->nops)
        printf("%-40s %8s %8s %8s %8s %8s\n", "operation", "ok", "failed", "unknown", "not sent",
               "skipped");
    for (size_t k = 0; k < s->nops; k++) {
        put_text(L, s->ops[k].name);
        printf("%*s", (int)(strlen(s->ops[k].name) < 40 ? 40 - strlen(s->ops[k].name) : 0), "");
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
            printf(" %8ld", s->ops[k].n[cols[c]]);
        putchar('\n');
    }
    if (!s->unknown)
        return;
    printf("\n%ld call%s whose outcome is unknown (sent, no reply recorded: check by hand):\n",
           s->unknown, s->unknown == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        const struct journal_call *c = journal_index_call(s->idx, i);
        if (counted_as(c->outcome) != J_UNKNOWN)
            continue;
        const char *fields[] = {c->time, c->run, c->operation, c->method};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            put_text(L, fields[f]);
            putchar(' ');
        }
        put_text(L, c->path);
        if (c->query && *c->query) {
            putchar('?');
            put_text(L, c->query);
        }
        printf(" identity %s (line %zu)\n", c->identity, c->line);
    }
}

/* [-0, +1] The summary as a Lua table for the JSON codec. */
static void push_json(lua_State *L, const struct summary *s)
{
    size_t n = journal_index_count(s->idx);
    lua_Integer k = 0;
    lua_createtable(L, 0, 3);
    lua_newtable(L);
    for (size_t i = 0; i < s->nops; i++) {
        lua_createtable(L, 0, N_OUTCOMES - 1);
        for (int o = J_OK; o < N_OUTCOMES; o++) {
            lua_pushinteger(L, s->ops[i].n[o]);
            lua_setfield(L, -2, journal_outcome_name((enum journal_outcome)o));
        }
        lua_setfield(L, -2, s->ops[i].name);
    }
    json_mark_object(L, -1);
    lua_setfield(L, -2, "operations");
    lua_newtable(L);
    for (size_t i = 0; i < n; i++) {
        const struct journal_call *c = journal_index_call(s->idx, i);
        const char *keys[] = {"time", "run", "operation", "method", "path", "query", "identity"};
        const char *vals[] = {c->time, c->run, c->operation, c->method, c->path, c->query,
                              c->identity};
        if (counted_as(c->outcome) != J_UNKNOWN)
            continue;
        lua_createtable(L, 0, 9);
        for (size_t f = 0; f < sizeof keys / sizeof keys[0]; f++) {
            if (vals[f])
                lua_pushstring(L, vals[f]);
            else
                json_push_null(L);
            lua_setfield(L, -2, keys[f]);
        }
        lua_pushinteger(L, c->seq);
        lua_setfield(L, -2, "seq");
        lua_pushinteger(L, (lua_Integer)c->line);
        lua_setfield(L, -2, "line");
        lua_rawseti(L, -2, ++k);
    }
    json_mark_array(L, -1);
    lua_setfield(L, -2, "unknown");
    lua_pushinteger(L, (lua_Integer)journal_index_runs(s->idx));
    lua_setfield(L, -2, "runs");
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "calls");
}

/* Under lua_pcall: prints the summary (its strings are escaped, or encoded, through L). */
static int print_summary(lua_State *L)
{
    const struct summary *s = lua_touserdata(L, 1);
    char err[JOURNAL_ERR_MAX];
    if (!s->json) {
        print_text(L, s);
        return 0;
    }
    push_json(L, s);
    if (json_print(L, -1, stdout, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    return 0;
}

static int usage_fail(const char *what, const char *arg)
{
    fprintf(stderr, "ecaphost: journal: %s%s\n(see ecaphost journal --help)\n", what, arg);
    return EXIT_USAGE;
}

int journal_command(int argc, char **argv, int i)
{
    struct summary s = {0};
    const char *file = NULL;
    char err[JOURNAL_ERR_MAX];
    struct journal_index *idx;
    lua_State *L;
    int rc;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            s.json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(journal_usage, stdout);
            return EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            return usage_fail("unknown option ", argv[i]);
        } else if (file) {
            return usage_fail("one journal at a time; unexpected ", argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return usage_fail("needs a journal FILE", "");
    if (!(idx = journal_index_load(file, NULL, err, sizeof err))) {
        fprintf(stderr, "ecaphost: %s\n", err);
        return EXIT_CONFIG;
    }
    s.idx = idx;
    if (count(&s) != 0 || !(L = luaL_newstate())) {
        fprintf(stderr, "ecaphost: journal: out of memory\n");
        free(s.ops);
        journal_index_free(idx);
        return EXIT_CONFIG;   /* not 1: that would say "unknown calls" to a monitor */
    }
    lua_pushcfunction(L, print_summary);
    lua_pushlightuserdata(L, &s);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "ecaphost: journal: %s\n", lua_tostring(L, -1));
        rc = EXIT_CONFIG;
    } else {
        rc = s.unknown ? EXIT_SCRIPT : EXIT_OK;
    }
    lua_close(L);
    free(s.ops);
    journal_index_free(idx);
    return rc;
}
