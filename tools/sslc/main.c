/* sslc: the command-line front end of libssl. */
#include "common/blas_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/ssl.h"

static const char *k_usage =
    "usage: sslc <command> [options]\n"
    "\n"
    "commands:\n"
    "  selfcheck [--threads N]   check every op's gradient against central differences and\n"
    "                            the BLAS/conv kernels against plain loops on this build\n"
    "  version                   print the version (also --version)\n"
    "  help                      this text (also --help, -h)\n";

static void on_check(const char *name, int status, const char *msg, void *user)
{
    int *count = user;
    (*count)++;
    if (status == SSL_OK)
        printf("  ok    %s\n", name);
    else
        printf("  FAIL  %s: %s\n", name, msg);
}

static int cmd_selfcheck(int argc, char **argv)
{
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sslc selfcheck [--threads N]\n"
                   "Runs every op on small random inputs: gradients against central differences,\n"
                   "sgemm and conv2d against plain loops. Exit status 0 when all pass.\n");
            return 0;
        } else {
            fprintf(stderr, "sslc selfcheck: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    ssl_set_num_threads(threads);
    printf("sslc %s selfcheck (%d threads)\n", ssl_version(), ssl_get_num_threads());
    int count = 0;
    int failed = ssl_selfcheck(on_check, &count);
    printf("%d passed, %d failed\n", count - failed, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc < 2) {
        fputs(k_usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("sslc %s\n", ssl_version());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(k_usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "selfcheck"))
        return cmd_selfcheck(argc - 2, argv + 2);
    fprintf(stderr, "sslc: unknown command '%s'\n\n%s", cmd, k_usage);
    return 2;
}
