/* sslc: the command-line front end of libssl. */
#include <stdio.h>
#include <string.h>

#include "ssl/ssl.h"

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("sslc %s\n", ssl_version());
        return 0;
    }
    fprintf(stderr, "usage: sslc --version\n");
    return 2;
}
