// sendmsg/recvmsg with SCM_RIGHTS ancillary data. Plain syscalls, no N-API:
// fds handed to SendWithFds stay owned by the caller (the kernel takes its own
// references); fds returned by ReceiveWithFds are owned by the caller, who
// must close them if it cannot pass them on.
#ifndef FDPASS_SCM_RIGHTS_H_
#define FDPASS_SCM_RIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sys_result.h"

namespace fdpass {

// The kernel's per-message limit (SCM_MAX_FD); more fails with EINVAL.
constexpr int kMaxFdsPerMessage = 253;

// One sendmsg with MSG_NOSIGNAL (a closed peer is an EPIPE result, not a
// signal that kills the process); EINTR is retried. value = bytes sent, which
// on a stream socket may be fewer than len: the fds travelled with the first
// byte.
SysResult SendWithFds(int fd, const uint8_t* data, size_t len, const int* fds, size_t nfds);

// Up to `count` messages in one sendmmsg (Linux; elsewhere a sendmsg loop),
// for SOCK_SEQPACKET and SOCK_DGRAM only: on a stream socket a partial write
// followed by the next message would interleave bytes. Message i is lens[i]
// bytes, taken consecutively from data, with fd_counts[i] fds, taken
// consecutively from fds; the caller checked every count. value = messages
// sent (>= 1); fewer than count means the buffer filled, or an error is
// pending that a send of the next message reports. No message sent: the
// error (EAGAIN when the buffer was full).
SysResult SendManyWithFds(int fd, const uint8_t* data, const int32_t* lens, const int* fds,
                          const int32_t* fd_counts, size_t count);

struct ReceivedChunk {
  size_t bytes = 0;
  std::vector<int> fds;
  bool control_truncated = false;  // MSG_CTRUNC: some fds were lost
  bool data_truncated = false;     // MSG_TRUNC: the datagram was longer than the buffer
};

// Size of a control buffer that holds max_fds + 1 descriptors (so "one more
// than allowed" is detectable rather than silently truncated) and a
// credentials message, in case the socket has SO_PASSCRED set.
size_t ControlBufferSize(int max_fds);

// One recvmsg with MSG_CMSG_CLOEXEC (received fds never leak into children);
// EINTR is retried. control must be aligned for cmsghdr.
SysResult ReceiveWithFds(int fd, uint8_t* buf, size_t buf_len, void* control, size_t control_len,
                         ReceivedChunk* out);

// Up to `count` messages from a SOCK_SEQPACKET socket in one recvmmsg
// (Linux; elsewhere a recvmsg loop). Message i lands in
// buf + i * slot_len and uses control + i * control_stride (a multiple of
// the cmsghdr alignment); out[0..count) receive the results, each exactly
// as ReceiveWithFds reports it (same flags, same per-message MSG_CTRUNC /
// MSG_TRUNC). value = messages received (>= 1); fewer than count means the
// queue ran dry, or an error is pending for the next call, or (off Linux) a
// zero-length message, possibly end-of-file, ended the loop. No message
// received: the error (EAGAIN when the queue was empty).
SysResult ReceiveManyWithFds(int fd, uint8_t* buf, size_t slot_len, void* control,
                             size_t control_stride, size_t count, ReceivedChunk* out);

}  // namespace fdpass

#endif  // FDPASS_SCM_RIGHTS_H_
