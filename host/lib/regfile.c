/* Regular files only (regfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "regfile.h"

FILE *regfile_open(const char *path)
{
    struct stat st;
    FILE *f = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), saved;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0)
        saved = errno;
    else if (!S_ISREG(st.st_mode))
        saved = 0;
    /* O_NONBLOCK means nothing for a regular file; cleared so reads behave as usual */
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, "r")))
        saved = errno;
    else
        return f;
    close(fd);
    errno = saved;
    return NULL;
}

const char *regfile_why(int err)
{
    return err ? strerror(err) : "not a regular file";
}
