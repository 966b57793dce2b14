/*
 * The physical-limit baseline for the fdpass suite: raw sendmsg/recvmsg of
 * SCM_RIGHTS between two processes, doing the same work as the Node case
 * (receiver closes every fd it gets). Not a library; built by the bench.
 *
 * Usage: fdbench <messages> <fds_per_message> [rounds] [batch]
 * With batch > 1 the sender hands the kernel `batch` messages per sendmmsg
 * (the receiver is unchanged): the C counterpart of FdSocket.writeBatch.
 * Prints one JSON line per timed round on stdout:
 *   {"fds":N*K,"messages":N,"fds_per_message":K,"seconds":S}
 *
 * Protocol, shared with py/fdbench.py and the Node cases: every message is
 * 8 bytes; byte 0 is 1 on the last message of a round. After the last
 * message the receiver answers with 8 bytes: the little-endian count of
 * fds it received and closed in that round. A round is timed on the sender
 * from just before the first sendmsg to the receipt of that answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 253 /* SCM_MAX_FD */
#define MSG_BYTES 8
/* Distinct open files the sender cycles through, like the Node case. */
#define BASE_FDS 4
/* Untimed messages before the first round: page in, warm caches. */
#define WARMUP_MESSAGES 1000

static void die(const char *what) {
  fprintf(stderr, "fdbench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_one(int sock, const int *fds, int k, int last) {
  unsigned char data[MSG_BYTES] = {0};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  } ctl;
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  data[0] = (unsigned char)last;
  if (k > 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)k);
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == (ssize_t)sizeof data) return;
    if (n < 0 && errno == EINTR) continue;
    die("sendmsg");
  }
}

#define MAX_BATCH 64

/* Sends messages [i, i + b) of a round of n in one sendmmsg; returns how many went. */
static int send_batch(int sock, const int *fds, int k, long i, int b, long n) {
  static unsigned char data[MAX_BATCH][MSG_BYTES];
  static struct iovec iov[MAX_BATCH];
  static struct mmsghdr msgs[MAX_BATCH];
  static union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  } ctl[MAX_BATCH];
  for (int j = 0; j < b; j++) {
    memset(data[j], 0, MSG_BYTES);
    data[j][0] = (unsigned char)(i + j == n - 1);
    iov[j] = (struct iovec){.iov_base = data[j], .iov_len = MSG_BYTES};
    memset(&msgs[j], 0, sizeof msgs[j]);
    msgs[j].msg_hdr.msg_iov = &iov[j];
    msgs[j].msg_hdr.msg_iovlen = 1;
    if (k > 0) {
      msgs[j].msg_hdr.msg_control = ctl[j].buf;
      msgs[j].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k);
      struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[j].msg_hdr);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)k);
    }
  }
  for (;;) {
    int sent = sendmmsg(sock, msgs, (unsigned int)b, MSG_NOSIGNAL);
    if (sent > 0) return sent;
    if (sent < 0 && errno == EINTR) continue;
    die("sendmmsg");
  }
}

/* Sends one round of n messages (batch per syscall) and waits for the receiver's count. */
static uint64_t send_round(int sock, const int *fds, int k, long n, int batch) {
  if (batch <= 1) {
    for (long i = 0; i < n; i++) send_one(sock, fds, k, i == n - 1);
  } else {
    for (long i = 0; i < n;) {
      int b = n - i < batch ? (int)(n - i) : batch;
      i += send_batch(sock, fds, k, i, b, n);
    }
  }
  unsigned char ack[8];
  ssize_t r;
  do r = recv(sock, ack, sizeof ack, 0);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof ack) die("recv ack");
  uint64_t count = 0;
  for (int i = 7; i >= 0; i--) count = (count << 8) | ack[i];
  return count;
}

static void receiver(int sock) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  } ctl;
  unsigned char data[MSG_BYTES];
  uint64_t count = 0;
  for (;;) {
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmsg");
    }
    if (n == 0) return; /* sender closed: done */
    if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
      errno = EMSGSIZE;
      die("recvmsg truncated");
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int got[MAX_FDS];
      memcpy(got, CMSG_DATA(c), nfds * sizeof(int));
      for (size_t i = 0; i < nfds; i++) close(got[i]);
      count += nfds;
    }
    if (data[0] == 1) {
      unsigned char ack[8];
      for (int i = 0; i < 8; i++) ack[i] = (unsigned char)(count >> (8 * i));
      if (send(sock, ack, sizeof ack, MSG_NOSIGNAL) != (ssize_t)sizeof ack) die("send ack");
      count = 0;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "Usage: fdbench <messages> <fds_per_message> [rounds] [batch 1..%d]\n",
            MAX_BATCH);
    return 2;
  }
  long n = strtol(argv[1], NULL, 10);
  int k = (int)strtol(argv[2], NULL, 10);
  long rounds = argc >= 4 ? strtol(argv[3], NULL, 10) : 1;
  int batch = argc == 5 ? (int)strtol(argv[4], NULL, 10) : 1;
  if (n < 1 || k < 0 || k > MAX_FDS || rounds < 1 || batch < 1 || batch > MAX_BATCH) {
    fprintf(stderr,
            "fdbench: need messages >= 1, 0 <= fds_per_message <= %d, rounds >= 1, "
            "1 <= batch <= %d\n",
            MAX_FDS, MAX_BATCH);
    return 2;
  }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[0]);
    receiver(sv[1]);
    _exit(0);
  }
  close(sv[1]);

  int base[BASE_FDS];
  for (int i = 0; i < BASE_FDS; i++) {
    base[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (base[i] < 0) die("open /dev/null");
  }
  int fds[MAX_FDS];
  for (int i = 0; i < k; i++) fds[i] = base[i % BASE_FDS];

  long warm = n < WARMUP_MESSAGES ? n : WARMUP_MESSAGES;
  if (send_round(sv[0], fds, k, warm, batch) != (uint64_t)(warm * k)) {
    fprintf(stderr, "fdbench: warm-up count mismatch\n");
    return 1;
  }
  for (long r = 0; r < rounds; r++) {
    double t0 = now_s();
    uint64_t got = send_round(sv[0], fds, k, n, batch);
    double dt = now_s() - t0;
    if (got != (uint64_t)(n * k)) {
      fprintf(stderr, "fdbench: receiver counted %llu fds, expected %lld\n",
              (unsigned long long)got, (long long)(n * k));
      return 1;
    }
    printf("{\"fds\":%lld,\"messages\":%ld,\"fds_per_message\":%d,\"seconds\":%.9f}\n",
           (long long)(n * k), n, k, dt);
    fflush(stdout);
  }
  close(sv[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
