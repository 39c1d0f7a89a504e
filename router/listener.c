/* listener.c — listening sockets and accept. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "netaddr.h"

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE: stop accepting briefly */

struct listeners {
	struct loop *loop;
	listener_accept_cb on_accept;
	void *user_data;
	struct listener *first;
};

struct listener {
	struct listener *next;
	struct listeners *set;
	int fd;
	int tag;
	struct loop_watch watch;
	struct loop_timer resume;
	char name[80];
};

static void format_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
			port = ntohs(in4->sin_port);
			snprintf(out, len, "%s:%d", host, port);
			return;
		}
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
			snprintf(out, len, "[%s]:%d", host, port);
			return;
		}
	}
	snprintf(out, len, "fd %d", fd);
}

static void listener_on_accept(struct loop_watch *w, uint32_t events)
{
	(void)events;
	struct listener *l = container_of(w, struct listener, watch);
	struct listeners *ls = l->set;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept on %s: %s; pausing accepts for %d ms", l->name, strerror(errno),
					 ACCEPT_PAUSE_MS);
				loop_watch_mod(ls->loop, &l->watch, 0);
				loop_timer_arm_ms(ls->loop, &l->resume, ACCEPT_PAUSE_MS);
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ls->on_accept(fd, l->tag, ls->user_data); /* must not close the listeners */
	}
}

static void listener_on_resume(struct loop_timer *t)
{
	struct listener *l = container_of(t, struct listener, resume);
	loop_watch_mod(l->set->loop, &l->watch, EPOLLIN);
}

struct listeners *listeners_new(struct loop *loop, listener_accept_cb on_accept, void *user_data)
{
	struct listeners *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return NULL;
	ls->loop = loop;
	ls->on_accept = on_accept;
	ls->user_data = user_data;
	return ls;
}

void listeners_free(struct listeners *ls)
{
	if (!ls)
		return;
	listener_close_all(ls);
	free(ls);
}

static int listener_register(struct listeners *ls, int fd, int tag, struct berth_err *err)
{
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return berth_err_set(err, ENOMEM, "listener");
	}
	l->set = ls;
	l->fd = fd;
	l->tag = tag;
	loop_watch_init(&l->watch, listener_on_accept);
	loop_timer_init(&l->resume, listener_on_resume);
	format_name(fd, l->name, sizeof(l->name));
	if (loop_watch_add(ls->loop, &l->watch, fd, EPOLLIN, err) < 0) {
		close(fd);
		free(l);
		return -1;
	}
	l->next = ls->first;
	ls->first = l;
	printf("berth-router: listening on %s\n", l->name);
	fflush(stdout);
	log_info("listening on %s", l->name);
	return 0;
}

int listener_open(struct listeners *ls, const char *address, int tag, struct berth_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (netaddr_parse(address, &ss, &len, err) < 0)
		return -1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_err_set(err, errno, "socket for %s", address);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "cannot listen on %s%s", address,
				     e == EADDRINUSE ? " (is another router or server using this port?)" : "");
	}
	if (listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "listen on %s", address);
	}
	return listener_register(ls, fd, tag, err);
}

int listener_adopt(struct listeners *ls, int fd, int tag, struct berth_err *err)
{
	int type = 0, accepting = 0;
	socklen_t sl = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0)
		return berth_err_set(err, errno, "--listen-fd %d is not a socket", fd);
	sl = sizeof(accepting);
	if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &sl) < 0 || !accepting)
		return berth_err_set(err, 0, "--listen-fd %d is not a listening stream socket", fd);
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return berth_err_set(err, errno, "fcntl on --listen-fd %d", fd);
	return listener_register(ls, fd, tag, err);
}

void listener_close_all(struct listeners *ls)
{
	while (ls->first) {
		struct listener *l = ls->first;
		ls->first = l->next;
		loop_watch_del(ls->loop, &l->watch);
		loop_timer_cancel(ls->loop, &l->resume);
		close(l->fd);
		free(l);
	}
}

void listener_pause_all(struct listeners *ls, bool paused)
{
	for (struct listener *l = ls->first; l; l = l->next) {
		loop_timer_cancel(ls->loop, &l->resume);
		loop_watch_mod(ls->loop, &l->watch, paused ? 0 : EPOLLIN);
	}
}
