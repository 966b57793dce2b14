// Peer credentials. The values are the ones the kernel recorded at connect()
// (or socketpair()) time; a peer cannot forge them.
#include "peer_cred.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#if defined(__APPLE__)
#include <sys/un.h>
#endif

namespace fdpass {

SysResult ReadPeerCredentials(int fd, PeerCredentials* out) {
#if defined(SO_PEERCRED) && defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    return SysResult::Fail(errno, "getsockopt");
  }
  out->pid = cred.pid;
  out->uid = cred.uid;
  out->gid = cred.gid;
  return SysResult::Ok(0);
#elif defined(__APPLE__)
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) < 0) return SysResult::Fail(errno, "getpeereid");
  pid_t pid = -1;
  socklen_t len = sizeof(pid);
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) < 0) {
    return SysResult::Fail(errno, "getsockopt");
  }
  out->pid = pid;
  out->uid = uid;
  out->gid = gid;
  return SysResult::Ok(0);
#else
  (void)fd;
  (void)out;
  return SysResult::Fail(ENOTSUP, "getsockopt");
#endif
}

}  // namespace fdpass
