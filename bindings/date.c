/* Date strings as the API takes them: "YYYY-MM-DD" or an ISO-8601 date-time. Parsed by hand
 * (strptime/timegm are locale- and platform-dependent, and accept things like "2026-2-3"). */
#include <stddef.h>

#include "schema.h"
#include "lib/civil.h"

/* The documented range, both ends inclusive; 3000-01-01 is the usual open end, so
 * 3000-01-01T00:00:00 is fine and any later instant is not. */
const struct date date_min = {1899, 12, 31, 0, 0, 0, 0, 0, 0, 0};
const struct date date_max = {3000, 1, 1, 0, 0, 0, 0, 0, 0, 0};

static int digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    int v = 0;
    if (at + n > len)
        return -1;
    for (size_t i = at; i < at + n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int date_parse(const char *s, size_t len, struct date *d)
{
    size_t i = 10;
    *d = (struct date){0};
    if (digits(s, len, 0, 4, &d->year) || len < 10 || s[4] != '-' || digits(s, len, 5, 2, &d->month)
        || s[7] != '-' || digits(s, len, 8, 2, &d->day))
        return -1;
    if (d->month < 1 || d->month > 12 || d->day < 1 || d->day > days_in_month(d->year, d->month))
        return -1;
    if (len == 10)
        return 0;
    if (s[10] != 'T' || digits(s, len, 11, 2, &d->hour) || len < 16 || s[13] != ':'
        || digits(s, len, 14, 2, &d->min) || d->hour > 23 || d->min > 59)
        return -1;
    d->has_time = 1;
    i = 16;
    if (i < len && s[i] == ':') {
        if (digits(s, len, i + 1, 2, &d->sec) || d->sec > 59)
            return -1;
        i += 3;
        if (i < len && s[i] == '.') {
            long scale = 100000000;
            size_t n = 0;
            for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++) {
                if (n >= 9)
                    return -1; /* more precision than anyone sends: not a date we know */
                d->nsec += (s[i] - '0') * scale;
                scale /= 10;
            }
            if (n == 0)
                return -1;
        }
    }
    if (i == len)
        return 0;
    if (s[i] == 'Z' && i + 1 == len) {
        d->has_offset = 1;
        return 0;
    }
    if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (i + 6 != len || digits(s, len, i + 1, 2, &oh) || s[i + 3] != ':'
            || digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        d->has_offset = 1;
        d->offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        return 0;
    }
    return -1;
}

static int cmp_ll(long long a, long long b)
{
    return a < b ? -1 : a > b;
}

int date_cmp_local(const struct date *a, const struct date *b)
{
    const int x[6] = {a->year, a->month, a->day, a->hour, a->min, a->sec};
    const int y[6] = {b->year, b->month, b->day, b->hour, b->min, b->sec};
    for (int i = 0; i < 6; i++)
        if (x[i] != y[i])
            return cmp_ll(x[i], y[i]);
    return cmp_ll(a->nsec, b->nsec);
}


/* A date without an offset is taken as UTC: the API gives no zone for plain dates. */
int date_cmp_instant(const struct date *a, const struct date *b)
{
    long long sa = days_from_civil(a->year, a->month, a->day) * 86400 + a->hour * 3600
                   + a->min * 60 + a->sec - a->offset_min * 60LL;
    long long sb = days_from_civil(b->year, b->month, b->day) * 86400 + b->hour * 3600
                   + b->min * 60 + b->sec - b->offset_min * 60LL;
    return sa != sb ? cmp_ll(sa, sb) : cmp_ll(a->nsec, b->nsec);
}
