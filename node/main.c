/* main.c - the lbwatch binary: dispatches to a subcommand. Each subcommand parses its own
 * options and has its own --help. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "node/agent.h"
#include "node/ctl.h"
#include "node/daemon.h"
#include "node/demo.h"
#include "node/pki.h"


struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"node", lbw_node_main, "run an lbwatch node (probes, store, web)"},
    {"agent", lbw_agent_main, "run an agent on a load-balancer host (signed samples for nodes to pull)"},
    {"pki", lbw_pki_main, "make the cluster CA and node certificates, show certificates"},
    {"ctl", lbw_ctl_main, "operate a running cluster: status, add-node, remove-node"},
    {"demo", lbw_demo_main, "run a throwaway node with demo targets on loopback"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lbwatch <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-6s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'lbwatch <command> --help' for a command's options.\n"
                 "lbwatch --version prints the version.\n");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lbwatch %s\n", LBW_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            /* once, before any thread starts: libcurl's global state (and OpenSSL's) */
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "lbwatch: cannot initialise libcurl\n");
                return 1;
            }
            int rc = commands[i].main(argc - 1, argv + 1);
            curl_global_cleanup();
            return rc;
        }
    }
    fprintf(stderr, "lbwatch: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
