/* demo.h - `lbwatch demo`: a throwaway PKI, config and data dir in a temp dir, built-in demo
 * TLS targets served on loopback, and lbwatch node(s) monitoring them. Ctrl-C stops everything
 * and removes the temp dir. */
#ifndef LBW_DEMO_H
#define LBW_DEMO_H

/* The `lbwatch demo` subcommand: argv[0] is "demo". Returns the process exit code. */
int lbw_demo_main(int argc, char **argv);

#endif
