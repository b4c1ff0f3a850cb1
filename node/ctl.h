/* ctl.h - `lbwatch ctl`: operate a running cluster through a node's JSON API (status,
 * membership changes). */
#ifndef LBW_CTL_H
#define LBW_CTL_H

/* The `lbwatch ctl` subcommand: argv[0] is "ctl". Returns the process exit code
 * (0 done, 1 refused or unreachable, 2 bad usage). */
int lbw_ctl_main(int argc, char **argv);

#endif
