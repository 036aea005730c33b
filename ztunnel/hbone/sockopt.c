/* Socket options of spec §1.2. Every function acts on the fd it is given and nothing else. */
#include "hbone/sockopt.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

void zt_sockopt_default(struct zt_sockopt *o)
{
	memset(o, 0, sizeof(*o));
	o->keepalive = true;
	o->keepalive_time_s = 180;
	o->keepalive_interval_s = 180;
	o->keepalive_retries = 9;
}

static int set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

int zt_sockopt_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int zt_sockopt_mark(const struct zt_sockopt *o, int fd)
{
	return o->mark_set ? set_int(fd, SOL_SOCKET, SO_MARK, (int)o->mark) : 0;
}

int zt_sockopt_tcp(const struct zt_sockopt *o, int fd, const char **what)
{
	const char *w = NULL;
	int err;

	if ((err = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0)
		w = "TCP_NODELAY";
	else if (o->keepalive &&
	         ((err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0 ||
	          (err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)o->keepalive_time_s)) < 0 ||
	          (err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)o->keepalive_interval_s)) < 0 ||
	          (err = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)o->keepalive_retries)) < 0))
		w = "keepalive";
	else if (o->user_timeout_ms &&
	         (err = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)o->user_timeout_ms)) < 0)
		w = "TCP_USER_TIMEOUT";
	if (what)
		*what = w;
	return err;
}

int zt_sockopt_transparent(int fd, int family)
{
	int err = set_int(fd, SOL_IP, IP_TRANSPARENT, 1);

	if (!err && family == AF_INET6)
		err = set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
	return err;
}

int zt_sockopt_bind_spoofed(int fd, int family, const struct zt_ip *src)
{
	struct zt_sockaddr a = {.ip = *src, .port = 0};
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(&a, &ss);

	set_int(fd, SOL_IP, IP_TRANSPARENT, 1);
	set_int(fd, SOL_IP, IP_FREEBIND, 1);
	if (family == AF_INET6)
		set_int(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
	if (ss.ss_family != family)
		return 0;
	return bind(fd, (struct sockaddr *)&ss, sl) < 0 ? -errno : 0;
}

int zt_sockopt_original_dst(int fd, struct zt_sockaddr *out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(struct sockaddr_in);

	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &sl) == 0)
		return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
	sl = sizeof(struct sockaddr_in6);
	if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &sl) == 0)
		return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
}

int zt_sockopt_connect(int fd, const struct zt_sockaddr *dst)
{
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(dst, &ss);

	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	return 0;
}
