/* config_take_key_sources (cli/config.c) takes $ECAP_API_KEY out of the environment block
 * itself: every copy's bytes are overwritten (unsetenv alone leaves them where
 * /proc/self/environ reads), including a second copy of the name that getenv never returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli/config.h"

extern char **environ;

/* Whether n bytes from p are all zero. */
static int zeroed(const char *p, size_t n)
{
    while (n--)
        if (*p++)
            return 0;
    return 1;
}

int main(void)
{
    /* the block as the kernel hands it over: strings in writable memory, a duplicate name */
    char first[] = "ECAP_API_KEY=first-secret", other[] = "HOME=/root",
         second[] = "ECAP_API_KEY=second-secret";
    char *block[] = {first, other, second, NULL};
    const size_t name = strlen("ECAP_API_KEY=");
    struct config c;
    char err[256];
    char **saved = environ;
    environ = block;
    config_defaults(&c);
    CHECK(config_take_key_sources(&c, 1, err, sizeof err) == 0);
    CHECK(c.api_key && strcmp(c.api_key, "first-secret") == 0); /* getenv's, as before */
    CHECK(zeroed(first + name, sizeof first - name));
    CHECK(zeroed(second + name, sizeof second - name));
    CHECK(strcmp(other, "HOME=/root") == 0);
    CHECK(getenv("ECAP_API_KEY") == NULL);
    CHECK(config_take_key_sources(&c, 1, err, sizeof err) == 0); /* done once: a no-op */
    CHECK(c.api_key && strcmp(c.api_key, "first-secret") == 0);
    config_free(&c);
    environ = saved; /* block dies with main; exit handlers still read the environment */
    printf("test_env_key: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
