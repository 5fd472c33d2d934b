/* Numbers, durations and rates (see duration.h). The digits are scanned here, then converted
 * with strtod: what strtod alone would accept beyond plain decimals ("nan", "inf", "0x1p3",
 * "-1", "1e999") never reaches it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

#define DECIMAL_MAX_CHARS 64 /* longer spellings are refused, not rounded */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int decimal_parse(const char *s, double *out, const char **end)
{
    char buf[DECIMAL_MAX_CHARS + 1];
    size_t n = 0, digits = 0;
    double v;
    while (is_digit(s[n]))
        n++, digits++;
    if (s[n] == '.')
        for (n++; is_digit(s[n]); n++)
            digits++;
    if (digits == 0 || n > DECIMAL_MAX_CHARS)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    *end = s + n;
    return 0;
}

int decimal_parse_all(const char *s, double *out)
{
    const char *end;
    return decimal_parse(s, out, &end) == 0 && *end == '\0' ? 0 : -1;
}

/* Units; parts must come in increasing rank, each rank at most once ("min" is "m"). */
static const struct {
    const char *name;
    double seconds;
    int rank;
} units[] = {
    {"h", 3600, 0}, {"min", 60, 1}, {"m", 60, 1}, {"s", 1, 2}, {"ms", 0.001, 3},
};
#define N_UNITS (sizeof units / sizeof units[0])

/* The unit at the start of s that is longest ("ms" before "m"), or -1. */
static int unit_at(const char *s, size_t *len)
{
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < N_UNITS; i++) {
        size_t n = strlen(units[i].name);
        if (n > best_len && strncmp(s, units[i].name, n) == 0) {
            best = (int)i;
            best_len = n;
        }
    }
    *len = best_len;
    return best;
}

int duration_parse(const char *s, double *seconds)
{
    double total = 0, v;
    int last = -1; /* rank of the previous part's unit */
    const char *p = s;
    if (decimal_parse(p, &v, &p) != 0)
        return -1;
    if (*p == '\0') { /* a bare number: seconds */
        *seconds = v;
        return 0;
    }
    for (;;) {
        size_t len;
        int u = unit_at(p, &len);
        if (u < 0 || units[u].rank <= last)
            return -1;
        last = units[u].rank;
        total += v * units[u].seconds;
        p += len;
        if (*p == '\0')
            break;
        if (decimal_parse(p, &v, &p) != 0)
            return -1;
    }
    if (!isfinite(total))
        return -1;
    *seconds = total;
    return 0;
}

int rate_parse(const char *s, double *per_s)
{
    static const struct {
        const char *suffix;
        double per;
    } per[] = {{"", 1}, {"/s", 1}, {"/sec", 1}, {"/m", 60}, {"/min", 60}};
    const char *end;
    double v;
    if (decimal_parse(s, &v, &end) != 0)
        return -1;
    for (size_t i = 0; i < sizeof per / sizeof per[0]; i++)
        if (strcmp(end, per[i].suffix) == 0) {
            *per_s = v / per[i].per;
            return 0;
        }
    return -1;
}
