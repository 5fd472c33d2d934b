/* libFuzzer target: the JSON codec (host/json*.c).
 *
 * For every input that json_decode accepts:
 *   - json_encode must succeed: the codec promises that a decoded value always re-encodes
 *     (json.c: strings follow the same UTF-8 policy both ways, and decode and encode share
 *     the depth limit JSON_MAXDEPTH, so a decoded document is never too deep to encode);
 *   - the encoding must decode again, and re-encode to the very same bytes (keys are sorted,
 *     so the output is deterministic).
 * The one documented exception is JSON_SORT_MAX: objects with more pending pairs than that
 * come out in pairs() order, which is not stable between two tables; inputs large enough to
 * hold that many pairs only get the "must re-encode and decode" checks.
 * Any violation prints both texts and aborts (libFuzzer saves the input as a crash).
 *
 * spec/fuzz/crashes/ keeps the inputs of findings since fixed, as regression seeds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lib/json.h"
#include "lib/json_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* Shortest pair in JSON: "":0, (4 bytes plus a separator). */
#define MIN_PAIR_BYTES 4

static void fail(const char *what, const char *err, const uint8_t *in, size_t inlen,
                 const char *a, size_t alen, const char *b, size_t blen)
{
    fprintf(stderr, "fuzz_json: %s%s%s\n", what, err ? ": " : "", err ? err : "");
    fprintf(stderr, "input (%zu bytes): %.*s\n", inlen, (int)(inlen > 2000 ? 2000 : inlen),
            (const char *)in);
    if (a)
        fprintf(stderr, "first encoding (%zu bytes): %.*s\n", alen,
                (int)(alen > 2000 ? 2000 : alen), a);
    if (b)
        fprintf(stderr, "second encoding (%zu bytes): %.*s\n", blen,
                (int)(blen > 2000 ? 2000 : blen), b);
    abort();
}

/* A fresh state per input: nothing carries over between inputs (a crash reproduces from its
 * input alone), and lua_close frees all an input allocated, so libFuzzer's leak check (which
 * runs after any input whose mallocs and frees do not balance) stays quiet and fast unless
 * something really leaks. */
static void new_state(void)
{
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    luaL_requiref(L, "json", json_open, 1);
    lua_pop(L, 1);
}

static void one_input(const uint8_t *data, size_t size)
{
    char err[256];
    char *enc1, *enc2;
    size_t len1, len2;
    const char *s = (const char *)data;
    int sorted = size / MIN_PAIR_BYTES < JSON_SORT_MAX;

    lua_settop(L, 0);
    if (json_decode(L, s, size, err, sizeof err) != 0) {
        if (lua_gettop(L) != 0)
            fail("failed decode left values on the stack", err, data, size, NULL, 0, NULL, 0);
        return;
    }
    if (lua_gettop(L) != 1)
        fail("decode did not push exactly one value", NULL, data, size, NULL, 0, NULL, 0);

    enc1 = json_encode(L, 1, &len1, err, sizeof err);
    if (!enc1)
        fail("a decoded value does not re-encode", err, data, size, NULL, 0, NULL, 0);
    if (lua_gettop(L) != 1)
        fail("encode changed the stack", NULL, data, size, enc1, len1, NULL, 0);
    /* JSON text never holds a raw NUL (it is escaped); the buffer ends with one (json_encode
     * hands back len + 1 bytes) */
    if (memchr(enc1, '\0', len1) != NULL || enc1[len1] != '\0')
        fail("raw NUL in the encoding, or no NUL after it", NULL, data, size, enc1, len1, NULL, 0);

    if (json_decode(L, enc1, len1, err, sizeof err) != 0)
        fail("the encoding does not decode", err, data, size, enc1, len1, NULL, 0);
    enc2 = json_encode(L, 2, &len2, err, sizeof err);
    if (!enc2)
        fail("the re-decoded value does not encode", err, data, size, enc1, len1, NULL, 0);
    if (sorted && (len1 != len2 || memcmp(enc1, enc2, len1) != 0))
        fail("encode(decode(encode(decode(x)))) differs from encode(decode(x))", NULL, data,
             size, enc1, len1, enc2, len2);

    json_free(L, enc1, len1);
    json_free(L, enc2, len2);
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    new_state();
    one_input(data, size);
    lua_close(L);
    L = NULL;
    return 0;
}
