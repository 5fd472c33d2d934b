/* Escaping untrusted text for the terminal (text.h). */
#include <stdio.h>

#include "text.h"

void text_escape(luaL_Buffer *b, const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s, *end = u + len;
    size_t i = 0;
    while (i < len && i < max) {
        unsigned char c = u[i];
        size_t n = utf8_len(u + i, end);
        char esc[8];
        if (c == '\n') {
            luaL_addstring(b, "\\n");
        } else if (c == '\r') {
            luaL_addstring(b, "\\r");
        } else if (n == 0 || (c < 0x20 && c != '\t') || c == 0x7f) {
            /* a byte outside valid UTF-8 (0x9b alone is CSI on 8-bit terminals) is escaped */
            snprintf(esc, sizeof esc, "\\x%02x", c);
            luaL_addstring(b, esc);
            n = 1;
        } else if (c == 0xc2 && u[i + 1] <= 0x9f) {
            snprintf(esc, sizeof esc, "\\u%04x", u[i + 1]); /* C1 control */
            luaL_addstring(b, esc);
        } else {
            luaL_addlstring(b, s + i, n);
        }
        i += n;
    }
    if (i < len) {
        char more[48];
        snprintf(more, sizeof more, "... (%zu bytes more)", len - i);
        luaL_addstring(b, more);
    }
}
