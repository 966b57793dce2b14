// One datagram to an AF_UNIX SOCK_DGRAM socket. See unix_datagram.h. The
// socket lives only for the call, so no fd is ever left behind, whatever
// fails.
#include "unix_datagram.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace fdpass {

SysResult SendUnixDatagram(const std::string& address, const uint8_t* data, size_t len) {
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  // A path needs room for its terminating NUL; an abstract name does not.
  bool abstract = !address.empty() && address[0] == '\0';
  size_t room = sizeof(addr.sun_path) - (abstract ? 0 : 1);
  if (address.empty() || address.size() > room) return SysResult::Fail(ENAMETOOLONG, "sendto");
  std::memcpy(addr.sun_path, address.data(), address.size());
  socklen_t addr_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));

#ifdef SOCK_CLOEXEC
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysResult::Fail(errno, "socket");
#else
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return SysResult::Fail(errno, "socket");
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    CloseQuietly(fd);
    return SysResult::Fail(err, "fcntl");
  }
#endif

#ifdef MSG_NOSIGNAL
  const int flags = MSG_NOSIGNAL;
#else
  const int flags = 0;  // a datagram socket never raises SIGPIPE on macOS
#endif
  // MSG_DONTWAIT: this runs on the event loop. A receiver whose queue is
  // full (a manager that stopped reading) is reported as EAGAIN rather than
  // waited for.
  ssize_t sent;
  do {
    sent = sendto(fd, data, len, flags | MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr),
                  addr_len);
  } while (sent < 0 && errno == EINTR);
  int err = errno;
  CloseQuietly(fd);
  if (sent < 0) return SysResult::Fail(err, "sendto");
  return SysResult::Ok(static_cast<long>(sent));
}

}  // namespace fdpass
