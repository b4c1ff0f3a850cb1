/* agentmain.c - the lbwatch-agent program: `lbwatch agent` alone, for load-balancer hosts.
 *
 * The same code as the subcommand (node/agent.h), linked with only what the agent uses
 * (libuv, OpenSSL, libyaml, libpcap): without the node's libraries (libraft, LMDB,
 * libmicrohttpd, libcurl, jansson and theirs, whose pages every process that loads them
 * maps and whose constructors run) it is resident in about 5 MiB less (bench/agent.py).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "node/agent.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a node that goes away mid-answer is an error, not a signal */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("lbwatch-agent %s\n", LBW_VERSION);
        return 0;
    }
    return lbw_agent_main(argc, argv);
}
