/* The run's budget: bytes, deadline, stop flag. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "limits.h"

#define RESERVE (1 << 20) /* bytes allowed past the limit while the stop error unwinds */

double now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void limits_init(struct limits *lim, size_t max_memory, double timeout_s)
{
    memset(lim, 0, sizeof *lim);
    lim->limit = max_memory;
    lim->timeout_s = timeout_s;
    lim->deadline = timeout_s > 0 ? now_monotonic() + timeout_s : 0;
}

void *limits_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct limits *lim = ud;
    size_t old = ptr ? osize : 0;
    void *p;
    if (nsize == 0) {
        free(ptr);
        lim->used -= old;
        return NULL;
    }
    if (lim->limit && nsize > old && lim->used - old + nsize > lim->limit) {
        /* Once stopping, a small reserve lets the error unwind and the host report it. */
        if (lim->stop != STOP_MEMORY || lim->used - old + nsize > lim->limit + RESERVE) {
            if (lim->stop == STOP_NONE)
                lim->stop = STOP_MEMORY;
            return NULL;
        }
    }
    p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    lim->used = lim->used - old + nsize;
    return p;
}

int limits_charge(struct limits *lim, size_t n)
{
    if (lim->limit && lim->used + n > lim->limit)
        return -1;
    lim->used += n;
    return 0;
}

void limits_release(struct limits *lim, size_t n)
{
    lim->used -= n;
}

struct limits *limits_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

const char *limits_message(const struct limits *lim)
{
    switch ((int)lim->stop) {
    case STOP_TIME: return "time limit exceeded (--timeout)";
    case STOP_MEMORY: return "memory limit exceeded (--max-memory)";
    case STOP_SIGINT: return "interrupted (SIGINT)";
    case STOP_SIGTERM: return "terminated (SIGTERM)";
    default: return "stopped";
    }
}

int limits_poll(struct limits *lim)
{
    if (lim->stop == STOP_NONE && lim->deadline > 0 && now_monotonic() >= lim->deadline)
        lim->stop = STOP_TIME;
    return lim->stop;
}

static void hook_every_instruction(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    limits_check(L);
}

void limits_check(lua_State *L)
{
    struct limits *lim = limits_of(L);
    if (limits_poll(lim) != STOP_NONE) {
        /* Check again after every instruction from now on: a pcall that catches this error
         * runs straight into the next one. */
        lua_sethook(L, hook_every_instruction, LUA_MASKCOUNT, 1);
        lua_pushstring(L, limits_message(lim));
        lua_error(L);
    }
}
