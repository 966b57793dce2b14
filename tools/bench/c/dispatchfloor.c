// dispatchfloor: the floor of a prefork dispatcher that keeps a master
// process between the kernel and the workers, as ours does. It runs our
// own Node workers (tools/bench/src/dispatcher/ours-worker.mjs over
// serveDispatched) and speaks the dispatcher's channel protocol to them
// (packages/backend-sdk/src/dispatch/wire.ts), but the master is C and does
// only the kernel work such a master cannot skip: accept4 until EAGAIN,
// one sendmsg of SCM_RIGHTS per worker per batch, a close of its copies,
// and epoll. It keeps no books: no load figures (workers take turns per
// connection), no waiting for ADOPTED before closing its copies (it
// discards reports unread), no retry, no respawn, no metrics. So no master
// written in any language, with the same workers, can dispatch for less
// CPU: the dispatcher suite measures it in the same rounds as ours, and a
// target it misses too is out of reach for this design on that run.
//
// usage: dispatchfloor <port> <workers> <worker command…>
// e.g. dispatchfloor 8080 2 /usr/bin/node ours-worker.mjs
// Prints "ready" once every worker answered its HELLO with READY. On
// SIGTERM it sends STOP, closes its channels, reaps the workers (SIGKILL
// after 3 s) and exits 0. Any fault before "ready" exits 1 with a message
// on stderr; a worker that dies while serving exits 2 (a floor that lost a
// worker measured nothing).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
  MAX_WORKERS = 16,
  // What ours accepts per readiness event at most (master.ts).
  ACCEPT_BUDGET = 64,
  HEADER = 4,
  RECORD = 8,
  WIRE_VERSION = 1,
  T_HELLO = 0x01,
  T_DISPATCH = 0x02,
  T_STOP = 0x03,
  T_READY = 0x81,
};

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static void die(const char *what) {
  fprintf(stderr, "dispatchfloor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void put16(uint8_t *p, unsigned v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff;
}

static pid_t spawn_worker(int channel, char **command) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    // The worker takes its channel as fd 3, named by HANDOFF_DISPATCH_FD
    // (worker-channel.ts); dup2 clears close-on-exec on the copy.
    if (channel == 3) {
      if (fcntl(3, F_SETFD, 0) < 0) _exit(127);
    } else if (dup2(channel, 3) < 0) {
      _exit(127);
    }
    setenv("HANDOFF_DISPATCH_FD", "3", 1);
    execv(command[0], command);
    _exit(127);
  }
  return pid;
}

static void send_hello(int channel, int slot, int port) {
  char json[512];
  int n = snprintf(json, sizeof json,
                   "{\"slot\":%d,\"generation\":0,\"drainDeadlineMs\":2000,\"endpoints\":"
                   "[{\"index\":0,\"transport\":\"tcp\",\"family\":\"inet\","
                   "\"address\":\"127.0.0.1\",\"port\":%d,\"noDelay\":true}]}",
                   slot, port);
  uint8_t msg[HEADER + sizeof json];
  msg[0] = T_HELLO;
  msg[1] = WIRE_VERSION;
  put16(msg + 2, (unsigned)n);
  memcpy(msg + HEADER, json, (size_t)n);
  if (send(channel, msg, HEADER + (size_t)n, MSG_NOSIGNAL) >= 0) return;
  if (errno != EPIPE && errno != ECONNRESET) die("send hello");
  // The worker is already gone: await_ready says so.
}

static void await_ready(int channel) {
  uint8_t msg[64];
  ssize_t n = recv(channel, msg, sizeof msg, 0);
  if (n < 0 && errno != ECONNRESET) die("recv ready");
  if (n <= 0 || msg[0] != T_READY) {
    fprintf(stderr, "dispatchfloor: a worker did not answer READY\n");
    exit(1);
  }
}

/** One DISPATCH of `count` fds; waits for room rather than drop a connection. */
static void dispatch(int channel, const int *fds, int count, uint64_t *next_id) {
  uint8_t msg[HEADER + ACCEPT_BUDGET * RECORD];
  msg[0] = T_DISPATCH;
  msg[1] = WIRE_VERSION;
  put16(msg + 2, (unsigned)count);
  for (int i = 0; i < count; i++) {
    uint8_t *r = msg + HEADER + i * RECORD;
    uint64_t id = (*next_id)++;
    put32(r, (uint32_t)id);
    put16(r + 4, (unsigned)(id >> 32) & 0xffff);
    r[6] = 0;  // listener 0
    r[7] = 0;
  }
  union {
    char buf[CMSG_SPACE(sizeof(int) * ACCEPT_BUDGET)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = msg, .iov_len = HEADER + (size_t)count * RECORD};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)count);
  for (;;) {
    if (sendmsg(channel, &mh, MSG_NOSIGNAL) >= 0) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      fprintf(stderr, "dispatchfloor: sendmsg to a worker: %s\n", strerror(errno));
      exit(2);
    }
    struct pollfd p = {.fd = channel, .events = POLLOUT};
    poll(&p, 1, 100);
  }
}

/** Reports (ADOPTED, CLOSED…) are read and dropped: the floor keeps no books. */
static void discard_reports(int channel) {
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = recv(channel, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (stopping) return;
    fprintf(stderr, "dispatchfloor: a worker's channel closed while serving\n");
    exit(2);
  }
}

static void stop_workers(const int *channels, const pid_t *pids, int n) {
  uint8_t stop[HEADER + 4] = {T_STOP, WIRE_VERSION, 0, 0};
  put32(stop + HEADER, 2000);
  for (int i = 0; i < n; i++) send(channels[i], stop, sizeof stop, MSG_NOSIGNAL | MSG_DONTWAIT);
  // A draining worker still reports, then ends its channel: read until
  // each end closes, so no worker writes into a closed channel.
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int open = n;
  int done[MAX_WORKERS] = {0};
  while (open > 0) {
    struct pollfd p[MAX_WORKERS];
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = done[i] ? -1 : channels[i], .events = POLLIN};
    poll(p, (nfds_t)n, 100);
    for (int i = 0; i < n; i++) {
      if (done[i] || p[i].revents == 0) continue;
      uint8_t buf[4096];
      ssize_t got = recv(channels[i], buf, sizeof buf, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        done[i] = 1;
        open--;
      }
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= 3) break;
  }
  for (int i = 0; i < n; i++) close(channels[i]);
  struct timespec tick = {0, 10 * 1000 * 1000};
  int left = n;
  for (int waited = 0; left > 0 && waited < 300; waited++) {
    while (left > 0 && waitpid(-1, NULL, WNOHANG) > 0) left--;
    if (left > 0) nanosleep(&tick, NULL);
  }
  if (left > 0) {
    for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0) {
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: dispatchfloor <port> <workers> <worker command...>\n");
    return 1;
  }
  int port = atoi(argv[1]);
  int workers = atoi(argv[2]);
  if (port <= 0 || port > 65535 || workers < 1 || workers > MAX_WORKERS) {
    fprintf(stderr, "dispatchfloor: bad port or worker count\n");
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_term};  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // As ours does (listen.noDelay): connections inherit it, and the hello
  // tells the workers so, sparing them a setsockopt each.
  if (setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt TCP_NODELAY");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");

  int channels[MAX_WORKERS];
  pid_t pids[MAX_WORKERS];
  for (int i = 0; i < workers; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    pids[i] = spawn_worker(sv[1], argv + 3);
    close(sv[1]);
    channels[i] = sv[0];
    send_hello(channels[i], i, port);
  }
  for (int i = 0; i < workers; i++) await_ready(channels[i]);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
  for (int i = 0; i < workers; i++) {
    ev.data.u32 = (uint32_t)i + 1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, channels[i], &ev) < 0) die("epoll_ctl");
  }
  printf("ready\n");
  fflush(stdout);

  uint64_t next_id = 1;
  unsigned turn = 0;
  int fds[ACCEPT_BUDGET];
  int per[MAX_WORKERS][ACCEPT_BUDGET];
  int counts[MAX_WORKERS];
  while (!stopping) {
    struct epoll_event evs[MAX_WORKERS + 1];
    int n = epoll_wait(ep, evs, MAX_WORKERS + 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < n; e++) {
      uint32_t who = evs[e].data.u32;
      if (who > 0) {
        discard_reports(channels[who - 1]);
        continue;
      }
      int got = 0;
      while (got < ACCEPT_BUDGET) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          fds[got++] = fd;
          continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;  // EAGAIN, or a fault the next readiness event retries
      }
      if (got == 0) continue;
      memset(counts, 0, sizeof counts);
      for (int k = 0; k < got; k++) {
        int w = (int)(turn++ % (unsigned)workers);
        per[w][counts[w]++] = fds[k];
      }
      for (int w = 0; w < workers; w++) {
        if (counts[w] > 0) dispatch(channels[w], per[w], counts[w], &next_id);
      }
      for (int k = 0; k < got; k++) close(fds[k]);
    }
  }
  close(lfd);
  close(ep);
  stop_workers(channels, pids, workers);
  return 0;
}
