/* Listening unix sockets for the agent's two endpoints: a stale socket file left by an earlier
 * run is removed first, anything else at the path is left alone and refused. The socket is
 * created with mode 0600 (umask 077 around bind): only root's ztunnel and lab talk to it. */
#ifndef CNI_USOCK_H
#define CNI_USOCK_H

/* Listens on path with a socket of type (SOCK_SEQPACKET or SOCK_STREAM), non-blocking and
 * close-on-exec. Returns the fd, -EEXIST when a non-socket file is at path, ZT_E_TOOBIG when
 * path does not fit sun_path, or -errno. */
int cni_usock_listen(const char *path, int type);

#endif
