// SCM_RIGHTS transfer. The only place that builds or parses cmsg buffers.
#include "scm_rights.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fdpass {

namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;
#endif

#ifdef MSG_CMSG_CLOEXEC
constexpr int kRecvFlags = MSG_CMSG_CLOEXEC;
#else
constexpr int kRecvFlags = 0;
#endif

#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
// macOS has no MSG_NOSIGNAL; the per-socket option gives the same effect.
void SuppressSigpipe(int fd) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
}
#else
void SuppressSigpipe(int) {}
#endif

}  // namespace

size_t ControlBufferSize(int max_fds) {
  size_t size = CMSG_SPACE(sizeof(int) * static_cast<size_t>(max_fds + 1));
#ifdef SCM_CREDENTIALS
  size += CMSG_SPACE(sizeof(struct ucred));
#endif
  return size;
}

SysResult SendWithFds(int fd, const uint8_t* data, size_t len, const int* fds, size_t nfds) {
  if (nfds > static_cast<size_t>(kMaxFdsPerMessage)) return SysResult::Fail(EINVAL, "sendmsg");
  SuppressSigpipe(fd);
  iovec iov;
  // sendmsg takes a non-const iov_base; the kernel only reads it.
  iov.iov_base = const_cast<uint8_t*>(data);
  iov.iov_len = len;
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Sized for the kernel maximum and aligned for cmsghdr; a few hundred bytes
  // on the stack is cheaper than a heap allocation per send.
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (nfds > 0) {
    size_t payload = sizeof(int) * nfds;
    std::memset(control, 0, CMSG_SPACE(payload));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(payload);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(payload);
    std::memcpy(CMSG_DATA(cmsg), fds, payload);
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, kSendFlags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysResult::Fail(errno, "sendmsg");
  return SysResult::Ok(n);
}

SysResult ReceiveWithFds(int fd, uint8_t* buf, size_t buf_len, void* control, size_t control_len,
                         ReceivedChunk* out) {
  out->bytes = 0;
  out->fds.clear();
  out->control_truncated = false;
  out->data_truncated = false;
  iovec iov;
  iov.iov_base = buf;
  iov.iov_len = buf_len;
  msghdr msg;
  std::memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = control_len;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, kRecvFlags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysResult::Fail(errno, "recvmsg");
  // Collect every SCM_RIGHTS block even when the call reports truncation: the
  // fds that did arrive are ours now and the caller must be able to close
  // them.
  if (msg.msg_controllen > 0) {
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const uint8_t* data = CMSG_DATA(cmsg);
      for (size_t i = 0; i < count; i++) {
        int received;
        std::memcpy(&received, data + i * sizeof(int), sizeof(int));
#ifndef MSG_CMSG_CLOEXEC
        // Without MSG_CMSG_CLOEXEC there is a window before this fcntl in
        // which a concurrent fork+exec could inherit the fd; macOS only.
        fcntl(received, F_SETFD, FD_CLOEXEC);
#endif
        out->fds.push_back(received);
      }
    }
  }
  out->bytes = static_cast<size_t>(n);
  out->control_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  out->data_truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  return SysResult::Ok(n);
}

}  // namespace fdpass
