/* Tab completion: the word before the cursor split at its last '.' or ':', the part before
 * resolved from the sandbox's globals by raw reads (a host proxy read through what it stands
 * for), the keys of the table found offered. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include <editline/readline.h>

#include "lib/inspect.h"
#include "repl_private.h"
#include "run/sandbox.h"

#define MAX_MATCHES 1024

static lua_State *session;
static char *matches[MAX_MATCHES];
static int n_matches, next_match;

/* [-0, +0] Replaces the table at the top by what it stands for when it is a host proxy. */
static void unwrap_top(lua_State *L)
{
    if (sandbox_unproxy(L, -1))
        lua_remove(L, -2);
}

/* Under lua_pcall: (word) -> matches[] filled with the completions of word. */
static int collect(lua_State *L)
{
    size_t wlen, plen, klen;
    const char *word = lua_tolstring(L, 1, &wlen), *sep = NULL, *part, *seg;
    for (const char *p = word; *p; p++)
        if (*p == '.' || *p == ':')
            sep = p;
    part = sep ? sep + 1 : word;
    plen = strlen(part);
    sandbox_push_env(L);
    /* walk the prefix, segment by segment, through tables only */
    for (seg = word; sep && seg <= sep;) {
        size_t n = strcspn(seg, ".:");
        if (seg + n > sep || !lua_istable(L, -1))
            break;
        unwrap_top(L);
        lua_pushlstring(L, seg, n);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        seg += n + 1;
    }
    if (!lua_istable(L, -1))
        return 0;
    unwrap_top(L);
    for (lua_pushnil(L); lua_next(L, -2) && n_matches < MAX_MATCHES; lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        int table = lua_istable(L, -1) && !(sep && *sep == ':');
        size_t head = (size_t)(part - word), total;
        if (!k || !inspect_is_name(k, klen) || klen < plen || memcmp(k, part, plen) != 0)
            continue;
        total = head + klen + 2;
        if (!(matches[n_matches] = malloc(total)))
            break;
        memcpy(matches[n_matches], word, head);
        memcpy(matches[n_matches] + head, k, klen);
        strcpy(matches[n_matches] + head + klen, table ? "." : "");
        n_matches++;
    }
    return 0;
}

static void clear_matches(void)
{
    while (n_matches > 0)
        free(matches[--n_matches]);
    next_match = 0;
}

/* libedit's generator: each match once, handed over (libedit frees it). */
static char *generator(const char *text, int state)
{
    (void)text;
    (void)state;
    if (next_match < n_matches) {
        char *m = matches[next_match];
        matches[next_match++] = NULL;
        return m;
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    int top = lua_gettop(session);
    char **result;
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never file names */
    clear_matches();
    lua_pushcfunction(session, collect);
    lua_pushstring(session, text);
    if (lua_pcall(session, 1, 0, 0) != LUA_OK)
        lua_settop(session, top);
    result = n_matches ? rl_completion_matches(text, generator) : NULL;
    clear_matches();
    return result;
}

void repl_completion_init(lua_State *L)
{
    session = L;
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
    rl_completer_word_break_characters = (char *)rl_basic_word_break_characters;
    rl_completion_append_character = '\0';
    rl_attempted_completion_function = complete;
}
