// pidfd_open and a poll of the pidfd: see process_handle.h.
#include "process_handle.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "peer_cred.h"

#if defined(__linux__) && !defined(SYS_pidfd_open)
#define SYS_pidfd_open 434  // one number on every Linux architecture
#endif

namespace fdpass {

SysResult OpenProcessHandle(int pid) {
#if defined(__linux__)
  if (pid <= 0) return SysResult::Fail(EINVAL, "pidfd_open");
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0);
  if (fd < 0) return SysResult::Fail(errno, "pidfd_open");
  return SysResult::Ok(fd);
#else
  (void)pid;
  return SysResult::Fail(ENOSYS, "pidfd_open");
#endif
}

SysResult ProcessHasExited(int pidfd) {
  struct pollfd p = {pidfd, POLLIN, 0};
  int n;
  do {
    n = poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysResult::Fail(errno, "poll");
  // POLLNVAL: not an open fd at all, which the caller must hear about.
  if (p.revents & POLLNVAL) return SysResult::Fail(EBADF, "poll");
  return SysResult::Ok((p.revents & POLLIN) != 0 ? 1 : 0);
}

int PeerIsProcess(int fd, int pidfd, long pid, long uid) {
  PeerCredentials cred;
  if (!ReadPeerCredentials(fd, &cred).ok()) return -1;
  // Linux records pid 0 until a connect in progress completes.
  if (cred.pid == 0) return -1;
  if (cred.pid != pid || cred.uid != uid) return 0;
  // Checked after the credentials: a process that exits between the two
  // reads is seen as gone, never the other way round.
  SysResult exited = ProcessHasExited(pidfd);
  return exited.ok() && exited.value == 0 ? 1 : 0;
}

}  // namespace fdpass
