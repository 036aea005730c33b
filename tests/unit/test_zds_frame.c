/* ZDS framing (protocol/zds_frame.h) over a SOCK_SEQPACKET socketpair: one message per
 * datagram with its descriptors, the 1024-byte bound both ways, and no descriptor kept
 * beyond what a frame holds. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "protocol/zds_frame.h"
#include "runtime/err.h"

static int sv[2] = {-1, -1};

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

START_TEST(zds_frame_carries_a_message_and_its_fd)
{
	Istio__Workload__Zds__DelWorkload del = ISTIO__WORKLOAD__ZDS__DEL_WORKLOAD__INIT;
	Istio__Workload__Zds__WorkloadRequest req = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	Istio__Workload__Zds__WorkloadRequest *got = NULL;
	struct zt_zds_frame f;
	struct stat a, b;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	del.uid = "pod-1";
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL;
	req.del = &del;
	ck_assert_int_eq(zt_zds_frame_send(sv[0], &req.base, fd, 0), 0);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, MSG_DONTWAIT), 0);
	ck_assert_uint_eq(f.nfds, 1);
	ck_assert(!f.truncated && !f.fds_truncated);
	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_int_eq(fstat(f.fds[0], &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	ck_assert_int_eq(fcntl(f.fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(zt_zds_frame_decode(&f, &istio__workload__zds__workload_request__descriptor,
	                                     (ProtobufCMessage **)&got),
	                 0);
	ck_assert_int_eq(got->payload_case, ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL);
	ck_assert_str_eq(got->del->uid, "pod-1");
	zt_pb_free(&got->base);
	zt_zds_frame_close_fds(&f);
	ck_assert_uint_eq(f.nfds, 0);
	close(fd);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, MSG_DONTWAIT), -EAGAIN);
}
END_TEST

START_TEST(zds_frame_ack_round_trips_error_text)
{
	Istio__Workload__Zds__WorkloadResponse *r = NULL;
	struct zt_zds_frame f;

	ck_assert_int_eq(zt_zds_frame_send_ack(sv[0], "no such pod", 0), 0);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, 0), 0);
	ck_assert_int_eq(zt_zds_frame_decode(&f, &istio__workload__zds__workload_response__descriptor,
	                                     (ProtobufCMessage **)&r),
	                 0);
	ck_assert_int_eq(r->payload_case, ISTIO__WORKLOAD__ZDS__WORKLOAD_RESPONSE__PAYLOAD_ACK);
	ck_assert_str_eq(r->ack->error, "no such pod");
	zt_pb_free(&r->base);
}
END_TEST

START_TEST(zds_frame_flags_a_datagram_over_the_bound_as_truncated)
{
	static uint8_t big[ZT_ZDS_FRAME_MAX + 1];
	struct zt_zds_frame f;

	ck_assert_int_eq(zt_zds_frame_send_raw(sv[0], big, sizeof(big), NULL, 0, 0), 0);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, 0), 0);
	ck_assert(f.truncated);
	ck_assert_uint_eq(f.len, ZT_ZDS_FRAME_MAX);
	/* Exactly the bound is fine. */
	ck_assert_int_eq(zt_zds_frame_send_raw(sv[0], big, ZT_ZDS_FRAME_MAX, NULL, 0, 0), 0);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, 0), 0);
	ck_assert(!f.truncated);
	ck_assert_uint_eq(f.len, ZT_ZDS_FRAME_MAX);
}
END_TEST

START_TEST(zds_frame_pack_refuses_a_message_over_the_bound)
{
	Istio__Workload__Zds__DelWorkload del = ISTIO__WORKLOAD__ZDS__DEL_WORKLOAD__INIT;
	Istio__Workload__Zds__WorkloadRequest req = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	char uid[ZT_ZDS_FRAME_MAX + 1];
	uint8_t *buf = (uint8_t *)"x";
	size_t len;

	memset(uid, 'u', sizeof(uid) - 1);
	uid[sizeof(uid) - 1] = '\0';
	del.uid = uid;
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL;
	req.del = &del;
	ck_assert_int_eq(zt_zds_frame_pack(&req.base, &buf, &len), ZT_E_TOOBIG);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(zt_zds_frame_send(sv[0], &req.base, -1, 0), ZT_E_TOOBIG);
}
END_TEST

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Sends one byte with n descriptors, bypassing the sender's own limit. */
static void send_fds(int sock, const int *fds, size_t n)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cb;
	uint8_t byte = 0;
	struct iovec iov = {&byte, 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b};
	struct cmsghdr *c;

	ck_assert_uint_le(n, 16);
	memset(&cb, 0, sizeof(cb));
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	ck_assert_int_eq(sendmsg(sock, &msg, 0), 1);
}

START_TEST(zds_frame_closes_descriptors_beyond_what_a_frame_holds)
{
	int extra[ZT_ZDS_FRAME_MAX_FDS + 1], kept[ZT_ZDS_FRAME_MAX_FDS], before;
	struct zt_zds_frame f;
	uint8_t b = 0;

	for (int i = 0; i < ZT_ZDS_FRAME_MAX_FDS + 1; i++)
		extra[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* The sender refuses more than a frame holds... */
	ck_assert_int_eq(zt_zds_frame_send_raw(sv[0], &b, 1, extra, ZT_ZDS_FRAME_MAX_FDS + 1, 0),
	                 -EMSGSIZE);
	/* ...and the receiver keeps that many and closes the rest at once. */
	before = open_fds();
	send_fds(sv[0], extra, ZT_ZDS_FRAME_MAX_FDS + 1);
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, 0), 0);
	ck_assert_uint_eq(f.nfds, ZT_ZDS_FRAME_MAX_FDS);
	ck_assert(f.fds_truncated);
	ck_assert_int_eq(open_fds(), before + ZT_ZDS_FRAME_MAX_FDS);
	memcpy(kept, f.fds, sizeof(kept));
	zt_zds_frame_close_fds(&f);
	ck_assert_int_eq(open_fds(), before);
	for (int i = 0; i < ZT_ZDS_FRAME_MAX_FDS; i++)
		ck_assert(!fd_open(kept[i]));
	for (int i = 0; i < ZT_ZDS_FRAME_MAX_FDS + 1; i++)
		close(extra[i]);
}
END_TEST

START_TEST(zds_frame_reads_the_end_of_the_stream_as_empty)
{
	struct zt_zds_frame f;

	close(sv[0]);
	sv[0] = -1;
	ck_assert_int_eq(zt_zds_frame_recv(sv[1], &f, 0), 0);
	ck_assert_uint_eq(f.len, 0);
	ck_assert_uint_eq(f.nfds, 0);
}
END_TEST

Suite *zds_frame_suite(void);
Suite *zds_frame_suite(void)
{
	Suite *s = suite_create("zds_frame");
	TCase *tc = tcase_create("zds_frame");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, zds_frame_carries_a_message_and_its_fd);
	tcase_add_test(tc, zds_frame_ack_round_trips_error_text);
	tcase_add_test(tc, zds_frame_flags_a_datagram_over_the_bound_as_truncated);
	tcase_add_test(tc, zds_frame_pack_refuses_a_message_over_the_bound);
	tcase_add_test(tc, zds_frame_closes_descriptors_beyond_what_a_frame_holds);
	tcase_add_test(tc, zds_frame_reads_the_end_of_the_stream_as_empty);
	suite_add_tcase(s, tc);
	return s;
}
