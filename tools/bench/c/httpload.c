// httpload: a small closed-loop HTTP/1.1 load generator for the dispatcher
// suite. One thread, epoll, `concurrency` connections in flight; each sends
// `GET /` and reads one whole response (headers + Content-Length body).
//   close mode:     a new TCP connection per request (Connection: close);
//                   the request counts once the response is complete and the
//                   server has closed (EOF), then the slot reconnects.
//   keepalive mode: each slot keeps its connection and sends the next
//                   request as soon as the previous response is complete.
// It is written in C so that the generator costs a few microseconds per
// connection: a Node client would spend more CPU than the servers under
// test on these 2-core machines and flatten every ratio towards 1.
//
// usage: httpload <host> <port> <close|keepalive> <concurrency> <warmup_s> <seconds>
// prints one JSON line: {"requests","errors","connects","seconds",...}
// Errors (refused/reset connections, short or malformed responses) are
// counted, never retried silently.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 4096

enum { CONNECTING, READING };

struct slot {
  int fd;
  int state;
  size_t have;        // bytes of the current response read so far
  long need;          // total response bytes once headers are parsed, else -1
  char buf[BUF];
};

static struct sockaddr_in target;
static int keepalive;
static int ep;
static long requests, errors, connects, resets, refused, counting;

static const char close_req[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
static const char ka_req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(struct slot *s, int err) {
  if (counting) {
    errors++;
    if (err == ECONNRESET) resets++;
    if (err == ECONNREFUSED) refused++;
  }
  close(s->fd);
  s->fd = -1;
}

static int send_request(struct slot *s);

static void open_slot(struct slot *s) {
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    perror("socket");
    exit(1);
  }
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s->state = CONNECTING;
  s->have = 0;
  s->need = -1;
  if (counting) connects++;
  int rc = connect(s->fd, (struct sockaddr *)&target, sizeof target);
  if (rc < 0 && errno != EINPROGRESS) {
    fail(s, errno);
    return;
  }
  if (rc == 0) {
    // Loopback usually completes the handshake inside connect(): send at
    // once instead of waiting a loop turn for EPOLLOUT.
    int e = send_request(s);
    if (e != 0) {
      fail(s, e);
      return;
    }
    s->state = READING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static int send_request(struct slot *s) {
  const char *req = keepalive ? ka_req : close_req;
  size_t len = keepalive ? sizeof ka_req - 1 : sizeof close_req - 1;
  ssize_t n = send(s->fd, req, len, MSG_NOSIGNAL);
  if (n != (ssize_t)len) return n < 0 ? errno : EIO;
  s->have = 0;
  s->need = -1;
  return 0;
}

// Parses the status line and Content-Length once the headers are in.
static long response_size(const char *buf, size_t have) {
  const char *end = memmem(buf, have, "\r\n\r\n", 4);
  if (end == NULL) return have >= BUF ? -2 : -1;
  if (have < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0) return -2;
  const char *p = buf;
  while (p < end) {
    const char *nl = memmem(p, end - p, "\r\n", 2);
    if (nl == NULL) nl = end;
    if (nl - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
      return (end - buf) + 4 + strtol(p + 15, NULL, 10);
    p = nl + 2;
  }
  return -2;
}

static void on_event(struct slot *s, unsigned events) {
  if (s->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(s, err);
      return;
    }
    int e = send_request(s);
    if (e != 0) {
      fail(s, e);
      return;
    }
    s->state = READING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    return;
  }
  for (;;) {
    ssize_t n = recv(s->fd, s->buf + (s->have < BUF ? s->have : 0),
                     s->have < BUF ? BUF - s->have : BUF, 0);
    if (n < 0) {
      if (errno == EAGAIN) return;
      fail(s, errno);
      return;
    }
    if (n == 0) {
      // EOF: complete only if the whole response came first.
      if (!keepalive && s->need >= 0 && (long)s->have >= s->need) {
        if (counting) requests++;
        close(s->fd);
        s->fd = -1;
      } else {
        fail(s, EPIPE);
      }
      return;
    }
    s->have += n;
    if (s->need == -1) {
      s->need = response_size(s->buf, s->have < BUF ? s->have : BUF);
      if (s->need == -2) {
        fail(s, EPROTO);
        return;
      }
    }
    if (keepalive && s->need >= 0 && (long)s->have >= s->need) {
      if ((long)s->have > s->need) {
        fail(s, EPROTO);  // nothing was pipelined: extra bytes are garbage
        return;
      }
      if (counting) requests++;
      int e = send_request(s);
      if (e != 0) {
        fail(s, e);
        return;
      }
    }
    (void)events;
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: httpload <host> <port> <close|keepalive> <concurrency> <warmup_s> <seconds>\n");
    return 2;
  }
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons(atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
    fprintf(stderr, "bad host %s\n", argv[1]);
    return 2;
  }
  keepalive = strcmp(argv[3], "keepalive") == 0;
  int conc = atoi(argv[4]);
  double warmup = atof(argv[5]);
  double seconds = atof(argv[6]);
  if (conc < 1 || conc > 4096 || seconds <= 0) return 2;
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct slot *slots = calloc(conc, sizeof *slots);
  struct epoll_event *evs = calloc(conc, sizeof *evs);
  for (int i = 0; i < conc; i++) open_slot(&slots[i]);
  double t0 = now();
  double start = t0 + warmup, stop = start + seconds;
  double started = 0;
  for (;;) {
    double t = now();
    if (!counting && t >= start) {
      counting = 1;
      started = t;
    }
    if (t >= stop) break;
    int n = epoll_wait(ep, evs, conc, 50);
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    for (int i = 0; i < conc; i++)
      if (slots[i].fd < 0) open_slot(&slots[i]);
  }
  double elapsed = now() - started;
  printf(
      "{\"requests\":%ld,\"errors\":%ld,\"resets\":%ld,\"refused\":%ld,\"connects\":%ld,"
      "\"seconds\":%.4f,\"concurrency\":%d,\"mode\":\"%s\"}\n",
      requests, errors, resets, refused, connects, elapsed, conc, keepalive ? "keepalive" : "close");
  return 0;
}
