/* Text shown to people: the one UTF-8 check and the one escaping of untrusted text for the
 * terminal (log lines, the run's error report). */
#ifndef ECAP_TEXT_H
#define ECAP_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>

/* Length of the well-formed UTF-8 sequence at p (p < end): 1 for ASCII, 2..4, or 0 if it is
 * not one: stray continuation bytes, truncated sequences, overlong forms, surrogates
 * (U+D800..DFFF) and code points past U+10FFFF are refused, as RFC 3629 requires. A 4-byte
 * sequence is exactly a code point past U+FFFF (two UTF-16 units). Inline: the JSON codec
 * calls it per non-ASCII character. */
static inline size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;                       /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* surrogates */
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0) lo = 0x90;       /* overlong */
        else if (c == 0xF4) hi = 0x8F;  /* past U+10FFFF */
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80
            || (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Appends s[0..len) to b so that it is one printable line that cannot drive a terminal:
 * \n and \r as such, other C0 controls, DEL and bytes outside valid UTF-8 as \xNN, C1 controls
 * as \u00NN; tabs and valid UTF-8 are kept. At most max bytes of s are shown; the rest is
 * replaced by "... (N bytes more)" (TEXT_ALL: no bound). */
#define TEXT_ALL SIZE_MAX
void text_escape(luaL_Buffer *b, const char *s, size_t len, size_t max);

#endif
