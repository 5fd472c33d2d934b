/* Writing files for fs.write and fs.append, once the path has been resolved and granted: no
 * Lua calls here, so nothing can raise while a descriptor is open. Every open goes through
 * fs_open_beneath, so it stays inside the grant even if a directory was swapped meanwhile. */
#define _GNU_SOURCE /* O_PATH; POSIX.1-2008: fchmod, fsync, O_NOFOLLOW, O_DIRECTORY, *at */
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
 * replaces, renamed over it; then the directory is fsynced. The directory is opened once,
 * beneath the grant, and everything else is relative to it. On failure the temporary file is
 * gone and the old file untouched. */
int fs_write_atomic(const struct fs_anchor *a, const char *text, size_t len, int exists)
{
    static unsigned long seq;
    char tmp[128], dir[FS_PATH_MAX], reldir[FS_PATH_MAX];
    const char *name = fs_split_path(a->real, dir);
    struct stat st;
    int fd = -1, e = 0, pfd, dfd;
    fs_split_path(a->rel, reldir);
    pfd = fs_open_beneath(a, reldir, dir, O_PATH | O_DIRECTORY, 0);
    if (pfd < 0)
        return errno;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, sizeof tmp, ".%.64s.%ld.%lu.tmp", name, (long)getpid(), ++seq);
        fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            e = errno;
            close(pfd);
            return e;
        }
    }
    if (fd < 0) {
        close(pfd);
        return EEXIST;
    }
    if (exists && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        fchmod(fd, st.st_mode & 07777) != 0)
        e = errno;
    if (!e && write_all(fd, text, len) != 0)
        e = errno;
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && renameat(pfd, tmp, pfd, name) != 0)
        e = errno;
    if (e) {
        unlinkat(pfd, tmp, 0);
        close(pfd);
        return e;
    }
    dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: the rename itself is done */
        close(dfd);
    }
    close(pfd);
    return 0;
}

/* O_EXCL when creating: a symlink planted since the path was resolved is not followed. */
int fs_append_to(const struct fs_anchor *a, const char *text, size_t len, int exists)
{
    struct stat st;
    int e = 0;
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK;
    int fd = fs_open_beneath(a, a->rel, a->real, exists ? flags : flags | O_CREAT | O_EXCL, 0666);
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
