/*
 * The floor for broker.hello_to_reply: a fresh-connection server in C. It
 * listens on a Unix stream socket, and for each connection (blocking accept
 * loop, one at a time, in its own process) reads once and writes those bytes
 * straight back as soon as they arrive, then closes. Not a library; built by
 * the bench (src/broker/c-first-reply.ts) into bin/.
 *
 * Usage: firstreply <socket path>
 * Prints "ready" on stdout once listening; SIGTERM ends it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "firstreply: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "Usage: firstreply <socket path>\n");
    return 2;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof addr.sun_path) {
    fprintf(stderr, "firstreply: socket path too long\n");
    return 2;
  }
  strcpy(addr.sun_path, argv[1]);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 511) < 0) die("listen");
  fputs("ready\n", stdout);
  fflush(stdout);
  static char buf[65536];
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept4");
    }
    ssize_t n;
    do n = read(fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0) {
          if (errno == EINTR) continue;
          break; /* the client went away: next connection */
        }
        off += w;
      }
    }
    close(fd);
  }
}
