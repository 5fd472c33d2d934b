/* Numbers, durations and rates as the command line and the config file spell them: one parser
 * for the host and the simulator. Numbers are plain decimals (digits, an optional fraction):
 * no sign, exponent, hex, "nan" or "inf", so NaN, infinities and negative values never get
 * through. Callers check their own ranges. */
#ifndef ECAP_DURATION_H
#define ECAP_DURATION_H

/* A plain decimal at the start of s ("12", "0.5", ".5", "5."). Returns 0 with *out and *end
 * (the first character after it), or -1 (no number, or too large to be finite). */
int decimal_parse(const char *s, double *out, const char **end);

/* A decimal and nothing else. Returns 0 or -1. */
int decimal_parse_all(const char *s, double *out);

/* A duration in seconds: a bare number ("30", "0.05": seconds), or number+unit parts with
 * units h, m (or min), s, ms in decreasing order, each at most once ("50ms", "0.05s", "1m",
 * "1h30m", "2h"). Returns 0 with *seconds, or -1. */
int duration_parse(const char *s, double *seconds);

/* A rate in requests per second: "20", "20/s" (or /sec), "600/m" (or /min). Returns 0 or -1. */
int rate_parse(const char *s, double *per_s);

#endif
