/* daemon.h - `lbwatch node`: the long-running node process. It loads the config, opens the
 * store, starts the web server and runs the probe scheduler on one libuv loop until SIGINT or
 * SIGTERM, then shuts everything down in order. */
#ifndef LBW_DAEMON_H
#define LBW_DAEMON_H

/* The `lbwatch node` subcommand: argv[0] is "node". Returns the process exit code
 * (0 clean stop, 1 runtime failure, 2 bad usage or configuration). */
int lbw_node_main(int argc, char **argv);

#endif
