/* logs.h — `berth logs [-f] ENDPOINT [CONTAINER]`: prints the log files of
 * an endpoint's containers, found through the `ps` op (proto_control.h:
 * each row names its log file), and with -f follows them (a rotated file,
 * one that shrank, is read again from its start). Several files (several
 * containers or instances): each line is prefixed "[VARIANT/INSTANCE/HOST] ". */
#ifndef BERTH_CLI_LOGS_H
#define BERTH_CLI_LOGS_H

int cli_logs(const char *socket, int argc, char **argv);

#endif
