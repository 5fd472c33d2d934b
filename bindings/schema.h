/* Request bodies as data: a schema lists the fields of one body (name, type, presence, bounds)
 * plus an optional cross-field rule function. One validator (bindings/validate.c) walks any
 * schema; the per-area files (account_meter.c, cost_avoidance.c, meter.c) hold only schema
 * data and their rule functions.
 *
 * The validator reads script tables with raw access only (no metamethod runs), walks the
 * schema rather than the data (so cycles and deep garbage cannot recurse it), and on success
 * pushes a fresh copy of the value as it will be sent: integers normalised (2.0 -> 2),
 * fill-null fields added as json.null, tables marked as JSON objects/arrays. The script's own
 * table is never changed. On a violation it raises one error table of kind "validation"
 * (host/lib/errors.h) with field, rule, value, operation and a one-line message. */
#ifndef ECAP_SCHEMA_H
#define ECAP_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

enum schema_type {
    ST_INT32,  /* Lua integer, or a float with an exact integer value */
    ST_NUMBER, /* any finite number */
    ST_BOOL,
    ST_STRING, /* valid UTF-8 */
    ST_DATE,   /* "YYYY-MM-DD" or ISO-8601 date-time, 1899-12-31 .. 3000-01-01 */
    ST_ARRAY,  /* a sequence 1..n; elements described by .elem */
    ST_OBJECT  /* a table with string keys; fields described by .schema */
};

enum schema_presence {
    SP_OPTIONAL, /* may be left out or json.null */
    SP_REQUIRED, /* "Required": present and not null */
    SP_DEFINED   /* "Required (defined)": the key must be there; json.null is a legal value */
};

struct schema;
struct vctx;

struct field {
    const char *name;
    enum schema_type type;
    enum schema_presence presence;
    unsigned char fill_null;   /* SP_DEFINED left out by the script: send json.null */
    unsigned char no_null;     /* json.null refused even when optional (options tables) */
    unsigned char query;       /* options only: the field goes into the URL query */
    unsigned char has_range;   /* ST_INT32: min..max (else the whole int32 range) */
    long long min, max;
    size_t min_len, max_len;   /* ST_STRING, in UTF-16 code units as the server counts; 0 = none */
    const long long *allowed;  /* ST_INT32: the only legal values */
    size_t n_allowed;
    int (*check)(const char *s, size_t len); /* ST_STRING: extra format check, 1 = ok */
    const char *check_desc;    /* what check wants, for the message: "12 digits starting with 2" */
    const struct schema *schema; /* ST_OBJECT */
    const struct field *elem;    /* ST_ARRAY: every element (SP_REQUIRED: no null elements) */
};

/* Cross-field rule: runs on the validated copy at index obj (all fields already checked,
 * fill-null applied); raises with schema_fail on a violation. */
typedef void (*schema_rule)(lua_State *L, int obj, struct vctx *v);

struct schema {
    const char *name;            /* the API's type name, e.g. "AccountMeterEdit" */
    const struct field *fields;
    size_t n_fields;
    schema_rule rule;            /* or NULL */
};

#define SCHEMA_PATH_MAX 256

/* Walk state: the operation (for the error) and the dotted path of the value being checked. */
struct vctx {
    const char *operation;       /* "cost_avoidance.bulk_update" */
    const char *top;             /* name of the top-level value ("body", "options", "meterId") */
    size_t len;
    char path[SCHEMA_PATH_MAX];  /* "" at the top, then "esaChannelVersion", "filters[2]" ... */
    char full[SCHEMA_PATH_MAX + 64];
};

#define SCHEMA_INT32_ID .type = ST_INT32, .has_range = 1, .min = 1, .max = INT32_MAX
#define SCHEMA_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Checks the value at idx against f (f->name names it in errors; a nil value is judged by
 * f->presence) and pushes the copy to send (nil when an optional value is absent). Raises a
 * validation error naming operation on any violation. */
void schema_check(lua_State *L, int idx, const struct field *f, const char *operation);

/* schema_check for a request body: a required table described by s, named "body". */
void schema_validate(lua_State *L, int idx, const struct schema *s, const char *operation);

/* For rule functions. schema_path returns the dotted path of field rel inside the object being
 * checked (valid until the next call). schema_show pushes a short one-line description of the
 * value at idx (40, "\"2026-02-30\"", null, a table) and returns it. schema_fail raises the
 * validation error: field (a full path, or NULL), rule id, the offending value at vidx (0 for
 * none) and the message. */
const char *schema_path(struct vctx *v, const char *rel);
int schema_get(lua_State *L, int obj, const char *name); /* raw get; pushes it, returns its type */
const char *schema_show(lua_State *L, int idx);
_Noreturn void schema_fail(lua_State *L, struct vctx *v, const char *field, const char *rule,
                           int vidx, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Dates (bindings/date.c). */
struct date {
    int year, month, day, hour, min, sec;
    long nsec;
    int has_time, has_offset, offset_min;
};
/* Parses "YYYY-MM-DD" or "YYYY-MM-DDThh:mm[:ss[.f...]][Z|+hh:mm|-hh:mm]" with a real calendar
 * date. Returns 0, or -1 when s is not such a date. */
int date_parse(const char *s, size_t len, struct date *d);
/* Compares the written (wall-clock) values, offsets ignored: for the documented range. */
int date_cmp_local(const struct date *a, const struct date *b);
/* Compares the instants (an offset, when written, is applied): for end-after-begin. */
int date_cmp_instant(const struct date *a, const struct date *b);
extern const struct date date_min, date_max;

/* The body schemas and options of the bound operations (one file per EnergyCAP area). */
extern const struct schema schema_account_meter_edit;
extern const struct schema schema_account_meter_edit_options;
extern const struct schema schema_bulk_cost_avoidance;
extern const struct schema schema_bulk_cost_avoidance_options;
/* cost_avoidance.count: a FilterEdit list ({} = every meter: it only reads) and its options. */
extern const struct field field_filter_list;
extern const struct schema schema_meter_count_options;
extern const struct schema schema_upload_options;
extern const struct schema schema_data_access_release;
extern const struct schema schema_esa_channel_create;

#endif
