/* netaddr.c — see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int netaddr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, struct berth_err *err)
{
	char host[64];
	const char *port_text;
	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
			return berth_err_set(err, 0, "bad listen address \"%s\": expected [IPV6]:PORT", text);
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		port_text = end + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= sizeof(host))
			return berth_err_set(err, 0, "bad listen address \"%s\": expected HOST:PORT", text);
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		port_text = colon + 1;
	}
	char *end;
	errno = 0;
	long port = strtol(port_text, &end, 10);
	if (errno || end == port_text || *end || port < 0 || port > 65535)
		return berth_err_set(err, 0, "bad port in listen address \"%s\"", text);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return berth_err_set(err, 0, "bad host in listen address \"%s\": expected an IPv4 or [IPv6] address", text);
}

bool netaddr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

void netaddr_format(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%d", host, ntohs(in4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%d", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}
