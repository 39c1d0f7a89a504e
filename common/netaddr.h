/* netaddr.h — listen addresses as berth's flags and config spell them:
 * "HOST:PORT" or "[IPV6]:PORT"; HOST may be an IPv4 address, "localhost"
 * (127.0.0.1), or empty / "*" (0.0.0.0). No name resolution. */
#ifndef BERTH_NETADDR_H
#define BERTH_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "err.h"

int netaddr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, struct berth_err *err);

/* True for 127.0.0.0/8 and ::1. The wildcards 0.0.0.0 and :: are not
 * loopback: they take connections from every interface. */
bool netaddr_is_loopback(const struct sockaddr_storage *ss);

/* "HOST:PORT" or "[IPV6]:PORT" of an address (INET6_ADDRSTRLEN + 8 bytes
 * are always enough); "?" for another family. */
void netaddr_format(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
