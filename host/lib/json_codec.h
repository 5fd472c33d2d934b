/* Private to the JSON codec (json.c, json_decode.c, json_encode.c): limits, the shared
 * metatables and the string byte classes both directions use. UTF-8: lib/text.h. */
#ifndef ECAP_JSON_CODEC_H
#define ECAP_JSON_CODEC_H

#include <stddef.h>
#include <lua.h>

#include "text.h" /* utf8_len */

/* Deeper documents are refused (decode) or not produced (encode): this keeps the recursion
 * far from the end of the C stack, even on a small thread stack. */
#define JSON_MAXDEPTH 200

/* Registry keys of the shared metatables (also their __name); scripts calling getmetatable()
 * get "json.array" / "json.object" instead (__metatable). */
#define ARRAY_MT "ecap.json.array"
#define OBJECT_MT "ecap.json.object"
#define BOX_MT "ecap.json.buffer"

/* Values of one array (pairs of one object: half as many) gathered on the Lua stack before
 * they are moved into their table. Gathering first lets the table be created at its final
 * size (no rehash) for every container that fits; bigger ones spill in chunks, which bounds
 * the stack used per nesting level. */
#define DEC_CHUNK 256

/* 1: object keys come out sorted (bytewise), so the output is deterministic: Lua 5.4 seeds its
 * string hash per state, so pairs() order differs from run to run. 0: pairs() order. */
#ifndef JSON_SORT_KEYS
#define JSON_SORT_KEYS 1
#endif

/* Sorting keeps each key/value pair on the Lua stack (2 slots) until the object is written.
 * Past this many pending pairs (all nesting levels together) objects come out in pairs()
 * order instead, well before the stack's hard limit (LUAI_MAXSTACK, 1,000,000 slots), where
 * a failed lua_checkstack would leave the state unable to grow its stack at all. */
#define JSON_SORT_MAX 200000

#if defined(__GNUC__)
#define json_noinline __attribute__((noinline))
#define json_likely(x) __builtin_expect(!!(x), 1)
#define json_unlikely(x) __builtin_expect(!!(x), 0)
#define json_printf(f, a) __attribute__((format(printf, f, a)))
#else
#define json_noinline
#define json_likely(x) (x)
#define json_unlikely(x) (x)
#define json_printf(f, a)
#endif

/* Push the shared array / object metatables (created on first use). */
void json_push_array_mt(lua_State *L);
void json_push_object_mt(lua_State *L);

/* Byte classes inside strings, shared by the decoder (what needs a closer look) and the
 * encoder (what needs escaping). 0 is the common case: copy as is. */
enum { C_PLAIN = 0, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH };

#define R3 C_CTRL, C_CTRL, C_CTRL
#define R4 C_CTRL, C_CTRL, C_CTRL, C_CTRL
#define C16 R4, R4, R4, R4
#define H16 C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, \
            C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH
#define P16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char str_class[256] = {
    C16, C16,                                               /* 0x00-0x1f */
    0, 0, C_QUOTE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x20-0x2f */
    P16,                                                    /* 0x30-0x3f */
    P16,                                                    /* 0x40-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C_BSLASH, 0, 0, 0,  /* 0x50-0x5f */
    P16, P16,                                               /* 0x60-0x7f */
    H16, H16, H16, H16, H16, H16, H16, H16                  /* 0x80-0xff */
};
#undef R3
#undef R4
#undef C16
#undef H16
#undef P16

#endif
