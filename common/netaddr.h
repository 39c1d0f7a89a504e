/* netaddr.h — listen addresses as berth's flags and config spell them:
 * "HOST:PORT" or "[IPV6]:PORT"; HOST may be an IPv4 address, "localhost"
 * (127.0.0.1), or empty / "*" (0.0.0.0). No name resolution. */
#ifndef BERTH_NETADDR_H
#define BERTH_NETADDR_H

#include <sys/socket.h>

#include "err.h"

int netaddr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, struct berth_err *err);

#endif
