/* Writing files for fs.write and fs.append, once the path has been resolved and granted: no
 * Lua calls here, so nothing can raise while a descriptor is open. */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008: fchmod, fsync, O_NOFOLLOW, O_DIRECTORY */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fs_private.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

static int write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A temporary file in the same directory, written, fsynced, given the mode of the file it
 * replaces, renamed over it; then the directory is fsynced. On failure the temporary file is
 * gone and the old file untouched. */
int fs_write_atomic(const char *real, const char *text, size_t len, int exists)
{
    static unsigned long seq;
    char tmp[FS_PATH_MAX + 64], dir[FS_PATH_MAX];
    const char *name = fs_split_path(real, dir);
    struct stat st;
    int fd = -1, e = 0, dfd;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        int n = snprintf(tmp, sizeof tmp, "%s/.%.64s.%ld.%lu.tmp", strcmp(dir, "/") ? dir : "",
                         name, (long)getpid(), ++seq);
        if (n < 0 || (size_t)n >= sizeof tmp)
            return ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            return errno;
    }
    if (fd < 0)
        return EEXIST;
    if (exists && stat(real, &st) == 0 && fchmod(fd, st.st_mode & 07777) != 0)
        e = errno;
    if (!e && write_all(fd, text, len) != 0)
        e = errno;
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, real) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return e;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: the rename itself is done */
        close(dfd);
    }
    return 0;
}

/* O_EXCL when creating: a symlink planted since the path was resolved is not followed. */
int fs_append_to(const char *real, const char *text, size_t len, int exists)
{
    struct stat st;
    int e = 0;
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = open(real, exists ? flags : flags | O_CREAT | O_EXCL, 0666);
    if (fd < 0)
        return errno;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = EINVAL;
    else if (st.st_nlink > 1)
        e = EMLINK; /* a hard link planted in a grant could lead to a file outside it */
    if (!e && write_all(fd, text, len) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    return e;
}
