/* top.h — `berth top`: containers refreshed every few seconds, busiest
 * first, with CPU use over the last interval and memory from their cgroups. */
#ifndef BERTH_CLI_TOP_H
#define BERTH_CLI_TOP_H

/* argv[0] is "top"; options: -d SECONDS (2), -n ITERATIONS (0: until
 * interrupted). Returns the process exit code. */
int cli_top(const char *socket, int argc, char **argv);

#endif
