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

SysResult SendManyWithFds(int fd, const uint8_t* data, const int32_t* lens, const int* fds,
                          const int32_t* fd_counts, size_t count) {
  if (count == 0) return SysResult::Fail(EINVAL, "sendmmsg");
#if defined(__linux__)
  // One syscall for the batch instead of one per message: on a VM each
  // syscall entry is a large part of a small message's cost.
  constexpr size_t kMaxBatch = 64;
  if (count > kMaxBatch) count = kMaxBatch;
  size_t control_total = 0;
  for (size_t i = 0; i < count; i++) {
    if (fd_counts[i] > 0) control_total += CMSG_SPACE(sizeof(int) * fd_counts[i]);
  }
  // Reused across calls on this thread; uint64_t storage keeps every
  // CMSG_SPACE-sized block aligned for cmsghdr.
  thread_local std::vector<uint64_t> control;
  if (control.size() * sizeof(uint64_t) < control_total) {
    control.resize((control_total + sizeof(uint64_t) - 1) / sizeof(uint64_t));
  }
  auto* control_bytes = reinterpret_cast<uint8_t*>(control.data());
  std::memset(control_bytes, 0, control_total);
  iovec iov[kMaxBatch];
  mmsghdr msgs[kMaxBatch];
  std::memset(msgs, 0, sizeof(mmsghdr) * count);
  for (size_t i = 0; i < count; i++) {
    // sendmmsg takes a non-const iov_base; the kernel only reads it.
    iov[i].iov_base = const_cast<uint8_t*>(data);
    iov[i].iov_len = static_cast<size_t>(lens[i]);
    data += lens[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (fd_counts[i] > 0) {
      size_t payload = sizeof(int) * static_cast<size_t>(fd_counts[i]);
      msgs[i].msg_hdr.msg_control = control_bytes;
      msgs[i].msg_hdr.msg_controllen = CMSG_SPACE(payload);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(payload);
      std::memcpy(CMSG_DATA(cmsg), fds, payload);
      fds += fd_counts[i];
      control_bytes += CMSG_SPACE(payload);
    }
  }
  int n;
  do {
    n = sendmmsg(fd, msgs, static_cast<unsigned int>(count), kSendFlags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysResult::Fail(errno, "sendmmsg");
  return SysResult::Ok(n);
#else
  SuppressSigpipe(fd);
  size_t sent = 0;
  for (; sent < count; sent++) {
    SysResult r = SendWithFds(fd, data, static_cast<size_t>(lens[sent]), fds,
                              static_cast<size_t>(fd_counts[sent]));
    if (!r.ok()) {
      if (sent == 0) return r;
      break;
    }
    data += lens[sent];
    fds += fd_counts[sent];
  }
  return SysResult::Ok(static_cast<long>(sent));
#endif
}

namespace {

// Collects every SCM_RIGHTS block even when the call reports truncation: the
// fds that did arrive are ours now and the caller must be able to close
// them.
void CollectFds(msghdr* msg, ReceivedChunk* out) {
  if (msg->msg_controllen == 0) return;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(msg, cmsg)) {
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

void ResetChunk(ReceivedChunk* out) {
  out->bytes = 0;
  out->fds.clear();
  out->control_truncated = false;
  out->data_truncated = false;
}

void FinishChunk(msghdr* msg, size_t bytes, ReceivedChunk* out) {
  CollectFds(msg, out);
  out->bytes = bytes;
  out->control_truncated = (msg->msg_flags & MSG_CTRUNC) != 0;
  out->data_truncated = (msg->msg_flags & MSG_TRUNC) != 0;
}

}  // namespace

SysResult ReceiveWithFds(int fd, uint8_t* buf, size_t buf_len, void* control, size_t control_len,
                         ReceivedChunk* out) {
  ResetChunk(out);
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
  FinishChunk(&msg, static_cast<size_t>(n), out);
  return SysResult::Ok(n);
}

SysResult ReceiveManyWithFds(int fd, uint8_t* buf, size_t slot_len, void* control,
                             size_t control_stride, size_t count, ReceivedChunk* out) {
  if (count == 0) return SysResult::Fail(EINVAL, "recvmmsg");
  auto* control_bytes = static_cast<uint8_t*>(control);
#if defined(__linux__)
  // One syscall for the whole batch. The kernel runs the same per-message
  // receive as recvmsg, so flags, fd installation and MSG_CTRUNC/MSG_TRUNC
  // are reported per message exactly as ReceiveWithFds does.
  constexpr size_t kMaxBatch = 64;
  if (count > kMaxBatch) count = kMaxBatch;
  iovec iov[kMaxBatch];
  mmsghdr msgs[kMaxBatch];
  std::memset(msgs, 0, sizeof(mmsghdr) * count);
  for (size_t i = 0; i < count; i++) {
    iov[i].iov_base = buf + i * slot_len;
    iov[i].iov_len = slot_len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = control_bytes + i * control_stride;
    msgs[i].msg_hdr.msg_controllen = control_stride;
  }
  int n;
  do {
    n = recvmmsg(fd, msgs, static_cast<unsigned int>(count), kRecvFlags, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysResult::Fail(errno, "recvmmsg");
  for (int i = 0; i < n; i++) {
    ResetChunk(&out[i]);
    FinishChunk(&msgs[i].msg_hdr, msgs[i].msg_len, &out[i]);
  }
  return SysResult::Ok(n);
#else
  size_t got = 0;
  for (; got < count; got++) {
    SysResult r = ReceiveWithFds(fd, buf + got * slot_len, slot_len,
                                 control_bytes + got * control_stride, control_stride, &out[got]);
    if (!r.ok()) {
      if (got == 0) return r;
      break;
    }
    if (out[got].bytes == 0 && out[got].fds.empty()) {
      // Possibly end-of-file: let the caller decide before reading on.
      got++;
      break;
    }
  }
  return SysResult::Ok(static_cast<long>(got));
#endif
}

}  // namespace fdpass
