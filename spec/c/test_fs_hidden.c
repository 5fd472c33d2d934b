/* The descriptor-level check of fs_open_beneath (lib/fs_resolve.c): whatever path led there,
 * what gets opened on procfs or sysfs, or the API key file (by device and inode, so through
 * any hard link), is closed again and reported as FS_EHIDDEN. The busted specs show the path
 * check; this one shows the check that a swap between check and open cannot get past. */
#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lib/fs_private.h"

/* An anchor on directory dir (no key known). */
static void anchor_on(struct fs_anchor *a, const char *dir)
{
    memset(a, 0, sizeof *a);
    a->gfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    a->gerr = errno;
    a->real = dir;
    a->rel = ".";
}

/* Opens rel beneath a; returns the errno (0 when it opened, then closes it). */
static int open_errno(const struct fs_anchor *a, const char *rel, const char *abs, int flags)
{
    int fd = fs_open_beneath(a, rel, abs, flags, 0);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static void test_pseudo_filesystems(void)
{
    struct fs_anchor a;
    anchor_on(&a, "/proc");
    CHECK(a.gfd >= 0);
    CHECK(open_errno(&a, "self/environ", "/proc/self/environ", O_RDONLY) == FS_EHIDDEN);
    CHECK(open_errno(&a, "self/fd", "/proc/self/fd", O_RDONLY | O_DIRECTORY) == FS_EHIDDEN);
    CHECK(open_errno(&a, "self", "/proc/self", O_PATH | O_DIRECTORY) == FS_EHIDDEN);
    close(a.gfd);
    anchor_on(&a, "/sys");
    if (a.gfd >= 0) { /* no /sys in some containers */
        CHECK(open_errno(&a, ".", "/sys", O_RDONLY | O_DIRECTORY) == FS_EHIDDEN);
        close(a.gfd);
    }
}

static void test_key_inode(void)
{
    char dir[] = "/tmp/test_fs_hidden.XXXXXX", key[64], linked[64], other[64];
    struct fs_anchor a;
    struct stat st;
    FILE *f;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(key, sizeof key, "%s/key", dir);
    snprintf(linked, sizeof linked, "%s/link", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    if (!(f = fopen(key, "w")) || fputs("secret\n", f) < 0 || fclose(f) != 0 ||
        !(f = fopen(other, "w")) || fclose(f) != 0) {
        failed++;
        fprintf(stderr, "cannot write in %s\n", dir);
        return;
    }
    CHECK(link(key, linked) == 0);
    CHECK(stat(key, &st) == 0);

    anchor_on(&a, dir);
    CHECK(open_errno(&a, "link", linked, O_RDONLY) == 0); /* no key known: an ordinary file */
    a.key.known = 1;
    a.key.dev = st.st_dev;
    a.key.ino = st.st_ino;
    CHECK(open_errno(&a, "key", key, O_RDONLY) == FS_EHIDDEN);
    CHECK(open_errno(&a, "link", linked, O_RDONLY) == FS_EHIDDEN);
    CHECK(open_errno(&a, "link", linked, O_WRONLY | O_APPEND) == FS_EHIDDEN);
    CHECK(open_errno(&a, "other", other, O_RDONLY) == 0);
    close(a.gfd);
    unlink(key);
    unlink(linked);
    unlink(other);
    rmdir(dir);
}

int main(void)
{
    test_pseudo_filesystems();
    test_key_inode();
    printf("test_fs_hidden: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
