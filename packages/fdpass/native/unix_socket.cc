// AF_UNIX socket lifecycle. See unix_socket.h for the ownership contract.
// Linux-only flags (SOCK_NONBLOCK, SOCK_CLOEXEC, accept4, SIOCOUTQ,
// POLLRDHUP) have fcntl/ioctl fallbacks so the file still builds on macOS.
#include "unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifdef __linux__
#include <linux/sockios.h>
#endif

namespace fdpass {

void CloseQuietly(int fd) {
  if (fd >= 0) close(fd);
}

namespace {

// Applies O_NONBLOCK and FD_CLOEXEC with fcntl, for kernels (or macOS) where
// they could not be requested atomically at creation.
[[maybe_unused]] int MakeNonBlockingCloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return errno;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return errno;
  return 0;
}

SysResult NewSocket(int type) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysResult::Fail(errno, "socket");
  return SysResult::Ok(fd);
#else
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) return SysResult::Fail(errno, "socket");
  int err = MakeNonBlockingCloexec(fd);
  if (err != 0) {
    CloseQuietly(fd);
    return SysResult::Fail(err, "fcntl");
  }
  return SysResult::Ok(fd);
#endif
}

// Fills a sockaddr_un; fails with ENAMETOOLONG rather than truncating, since a
// silently shortened path would connect to (or create) the wrong file.
bool FillAddress(const std::string& path, sockaddr_un* addr, socklen_t* len) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  // A Linux abstract name (leading NUL) is exactly its bytes; a filesystem
  // path includes its terminating NUL.
  bool abstract = path[0] == '\0';
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return true;
}

SysResult GetIntOption(int fd, int level, int name, const char* label) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, level, name, &value, &len) < 0) return SysResult::Fail(errno, label);
  return SysResult::Ok(value);
}

}  // namespace

SysResult MakeSocketPair(int type, int fds[2]) {
  int pair[2] = {-1, -1};
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
    return SysResult::Fail(errno, "socketpair");
  }
#else
  if (socketpair(AF_UNIX, type, 0, pair) < 0) return SysResult::Fail(errno, "socketpair");
  for (int fd : pair) {
    int err = MakeNonBlockingCloexec(fd);
    if (err != 0) {
      CloseQuietly(pair[0]);
      CloseQuietly(pair[1]);
      return SysResult::Fail(err, "fcntl");
    }
  }
#endif
  fds[0] = pair[0];
  fds[1] = pair[1];
  return SysResult::Ok(0);
}

SysResult ConnectUnix(const std::string& path, int type, bool* in_progress) {
  *in_progress = false;
  sockaddr_un addr;
  socklen_t len = 0;
  if (!FillAddress(path, &addr, &len)) return SysResult::Fail(ENAMETOOLONG, "connect");
  SysResult sock = NewSocket(type);
  if (!sock.ok()) return sock;
  int fd = static_cast<int>(sock.value);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return SysResult::Ok(fd);
  int err = errno;
  if (err == EINPROGRESS) {
    *in_progress = true;
    return SysResult::Ok(fd);
  }
  CloseQuietly(fd);
  return SysResult::Fail(err, "connect");
}

SysResult ListenUnix(const std::string& path, int type, int backlog, int mode) {
  sockaddr_un addr;
  socklen_t len = 0;
  if (!FillAddress(path, &addr, &len)) return SysResult::Fail(ENAMETOOLONG, "bind");
  SysResult sock = NewSocket(type);
  if (!sock.ok()) return sock;
  int fd = static_cast<int>(sock.value);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    int err = errno;
    CloseQuietly(fd);
    return SysResult::Fail(err, "bind");
  }
  // chmod by path, not fchmod: on Linux the permission bits that guard
  // connect() live on the filesystem node, which fchmod on the socket does
  // not touch.
  if (mode >= 0 && path[0] != '\0' && chmod(path.c_str(), static_cast<mode_t>(mode)) < 0) {
    int err = errno;
    unlink(path.c_str());
    CloseQuietly(fd);
    return SysResult::Fail(err, "chmod");
  }
  if (listen(fd, backlog) < 0) {
    int err = errno;
    if (path[0] != '\0') unlink(path.c_str());
    CloseQuietly(fd);
    return SysResult::Fail(err, "listen");
  }
  return SysResult::Ok(fd);
}

SysResult AcceptConnection(int listen_fd) {
  int fd;
#if defined(__linux__)
  do {
    fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return SysResult::Fail(errno, "accept4");
#else
  do {
    fd = accept(listen_fd, nullptr, nullptr);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return SysResult::Fail(errno, "accept");
  int err = MakeNonBlockingCloexec(fd);
  if (err != 0) {
    CloseQuietly(fd);
    return SysResult::Fail(err, "fcntl");
  }
#endif
  return SysResult::Ok(fd);
}

SysResult SocketType(int fd) { return GetIntOption(fd, SOL_SOCKET, SO_TYPE, "getsockopt"); }

SysResult SocketFamily(int fd) {
#ifdef SO_DOMAIN
  return GetIntOption(fd, SOL_SOCKET, SO_DOMAIN, "getsockopt");
#else
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  std::memset(&ss, 0, sizeof(ss));
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    return SysResult::Fail(errno, "getsockname");
  }
  return SysResult::Ok(ss.ss_family);
#endif
}

SysResult SocketProtocol(int fd) {
#ifdef SO_PROTOCOL
  return GetIntOption(fd, SOL_SOCKET, SO_PROTOCOL, "getsockopt");
#else
  (void)fd;
  return SysResult::Ok(0);  // macOS has no SO_PROTOCOL; 0 means "default for the type"
#endif
}

SysResult IsListening(int fd) {
  return GetIntOption(fd, SOL_SOCKET, SO_ACCEPTCONN, "getsockopt");
}

SysResult SocketError(int fd) { return GetIntOption(fd, SOL_SOCKET, SO_ERROR, "getsockopt"); }

SysResult ShutdownWrite(int fd) {
  if (shutdown(fd, SHUT_WR) < 0) return SysResult::Fail(errno, "shutdown");
  return SysResult::Ok(0);
}

SysResult SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return SysResult::Fail(errno, "fcntl");
  if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    return SysResult::Fail(errno, "fcntl");
  }
  return SysResult::Ok(0);
}

SysResult DuplicateCloexec(int fd) {
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return SysResult::Fail(errno, "fcntl");
  return SysResult::Ok(dup);
}

SysResult CloseFd(int fd) {
  // EINTR still released the descriptor on Linux (see CloseQuietly), so it
  // is reported as success.
  if (close(fd) < 0 && errno != EINTR) return SysResult::Fail(errno, "close");
  return SysResult::Ok(0);
}

SysResult QueuedInput(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) < 0) return SysResult::Fail(errno, "ioctl");
  return SysResult::Ok(n);
}

SysResult QueuedOutput(int fd) {
#ifdef SIOCOUTQ
  int n = 0;
  if (ioctl(fd, SIOCOUTQ, &n) < 0) return SysResult::Fail(errno, "ioctl");
  return SysResult::Ok(n);
#elif defined(SO_NWRITE)
  return GetIntOption(fd, SOL_SOCKET, SO_NWRITE, "getsockopt");
#else
  (void)fd;
  return SysResult::Fail(ENOTSUP, "ioctl");
#endif
}

SysResult SendBufferSize(int fd) { return GetIntOption(fd, SOL_SOCKET, SO_SNDBUF, "getsockopt"); }

SysResult OpenFileLimit() {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) < 0) return SysResult::Fail(errno, "getrlimit");
  constexpr rlim_t kCap = rlim_t{1} << 30;
  return SysResult::Ok(static_cast<long>(lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > kCap
                                             ? kCap
                                             : lim.rlim_cur));
}

SysResult PeerHungUp(int fd) {
#ifdef POLLRDHUP
  pollfd p{fd, POLLRDHUP, 0};
  int rc;
  do {
    rc = poll(&p, 1, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return SysResult::Fail(errno, "poll");
  return SysResult::Ok((p.revents & (POLLRDHUP | POLLHUP)) != 0 ? 1 : 0);
#else
  // Without POLLRDHUP a zero-byte read is taken as end-of-file.
  (void)fd;
  return SysResult::Ok(1);
#endif
}

namespace {
SysResult ReadAddress(int fd, bool peer, std::vector<uint8_t>* out) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  std::memset(&ss, 0, sizeof(ss));
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc < 0) {
    if (peer && errno == ENOTCONN) {
      out->clear();
      return SysResult::Ok(0);
    }
    return SysResult::Fail(errno, peer ? "getpeername" : "getsockname");
  }
  if (len > sizeof(ss)) len = sizeof(ss);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&ss);
  out->assign(bytes, bytes + len);
  return SysResult::Ok(len);
}
}  // namespace

SysResult LocalAddress(int fd, std::vector<uint8_t>* out) { return ReadAddress(fd, false, out); }
SysResult PeerAddress(int fd, std::vector<uint8_t>* out) { return ReadAddress(fd, true, out); }

}  // namespace fdpass
