/* The file store: ecap.files.upload(fileDataTypeId, path [, {contentType=}]) sends one granted
 * file as multipart/form-data (the route is confirmed by the release's reference page; the
 * multipart shape, one file part named upload.part_name, is our inference). The file is opened
 * through fs (granted directories only, beneath the grant) and streamed from that descriptor:
 * never reopened by name, never loaded whole. */
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "lib/libs.h"
#include "lib/text.h"
#include "route.h"
#include "schema.h"

/* A MIME type: type "/" subtype, each a token (RFC 2045), parameters allowed after ';'. */
static int mime_type_ok(const char *s, size_t len)
{
    static const char tspecials[] = "()<>@,;:\\\"/[]?=";
    size_t i = 0;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && s[i] > 0x20 && s[i] < 0x7f && !strchr(tspecials, s[i]))
            i++;
        if (i == start)
            return 0;
        if (part == 0) {
            if (i >= len || s[i] != '/')
                return 0;
            i++;
        }
    }
    if (i == len)
        return 1;
    if (s[i] != ';')
        return 0;
    for (; i < len; i++) /* "; charset=..." : printable, no line breaks */
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static const struct field upload_options[] = {
    {.name = "contentType", .type = ST_STRING, .presence = SP_OPTIONAL, .no_null = 1, .min_len = 3,
     .max_len = 127, .check = mime_type_ok, .check_desc = "a MIME type such as application/pdf"},
};

const struct schema schema_upload_options = {
    "options", upload_options, SCHEMA_COUNT(upload_options), NULL};

/* The part's Content-Type when the script gives none: by extension, else octet-stream. */
static const char *type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {"pdf", "application/pdf"},   {"png", "image/png"},   {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},       {"tif", "image/tiff"},  {"tiff", "image/tiff"},
        {"gif", "image/gif"},         {"txt", "text/plain"},  {"csv", "text/csv"},
        {"xml", "application/xml"},   {"json", "application/json"},
        {"zip", "application/zip"},   {"doc", "application/msword"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    };
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* A file name that can stand in the part's Content-Disposition header as it is: valid UTF-8,
 * no control characters, no quote or backslash, at most 255 bytes. */
static int name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)s[i];
        size_t n = utf8_len((const unsigned char *)s + i, (const unsigned char *)s + len);
        if (n == 0 || ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            return 0;
        i += n;
    }
    return 1;
}

void upload_prepare(lua_State *L, const struct upload_options *up, const char *operation,
                    int path_idx, int opts_idx, struct call_file *f)
{
    long long max = up && up->max_bytes > 0 ? up->max_bytes : (long long)UPLOAD_MAX_MB_DEFAULT << 20;
    const char *path = lua_tostring(L, path_idx), *slash = strrchr(path, '/');
    struct vctx v = {.operation = operation, .top = "path"};
    memset(f, 0, sizeof *f);
    f->name = slash ? slash + 1 : path;
    if (!name_ok(f->name))
        schema_fail(L, &v, "path", "format", path_idx,
                    "path: the file name %s cannot be sent in a header (control characters, quotes "
                    "or backslashes, invalid UTF-8, or longer than 255 bytes)", schema_show(L, path_idx));
    f->fd = fs_open_granted(L, operation, path_idx, &f->size); /* pushes the handle */
    f->handle = lua_gettop(L);
    if (f->size == 0)
        schema_fail(L, &v, "path", "range", path_idx, "path: %s is empty", schema_show(L, path_idx));
    if (f->size > max)
        schema_fail(L, &v, "path", "range", path_idx,
                    "path: %s is larger than the upload limit (%lld MB, config upload.max_mb)",
                    schema_show(L, path_idx), max >> 20);
    f->part = up && up->part_name ? up->part_name : UPLOAD_PART_DEFAULT;
    f->type = type_of(f->name);
    if (opts_idx && schema_get(L, opts_idx, "contentType") == LUA_TSTRING)
        f->type = lua_tostring(L, -1); /* anchored by the options copy */
    if (opts_idx)
        lua_pop(L, 1);
}
