// AF_UNIX socket lifecycle: create, connect, listen, accept, socketpair, and
// the small getsockopt queries the JS layer needs. Every function returns an
// errno-style SysResult; an fd in a successful result belongs to the caller,
// and on failure every fd opened along the way has already been closed.
#ifndef FDPASS_UNIX_SOCKET_H_
#define FDPASS_UNIX_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sys_result.h"

namespace fdpass {

// Creates a connected, non-blocking, close-on-exec pair. fds[0..1] are set
// only on success.
SysResult MakeSocketPair(int type, int fds[2]);

// Non-blocking connect. value is the fd; *in_progress is set when the kernel
// answered EINPROGRESS (the fd is then valid and the caller waits for
// writability, then reads SocketError). EAGAIN (a full backlog) is returned as
// an error with the fd already closed so the caller can retry later.
SysResult ConnectUnix(const std::string& path, int type, bool* in_progress);

// socket + bind + (optional chmod) + listen. A failure after bind unlinks the
// path again so a failed listen leaves nothing behind.
SysResult ListenUnix(const std::string& path, int type, int backlog, int mode);

// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (fcntl fallback elsewhere).
SysResult AcceptConnection(int listen_fd);

// SO_TYPE and the address family of the socket behind fd.
SysResult SocketType(int fd);
SysResult SocketFamily(int fd);
SysResult SocketProtocol(int fd);
// 1 when fd is a listening socket, 0 when not.
SysResult IsListening(int fd);

// Pending error (SO_ERROR), consumed by the read.
SysResult SocketError(int fd);

SysResult ShutdownWrite(int fd);
SysResult SetNonBlocking(int fd);
SysResult DuplicateCloexec(int fd);
SysResult CloseFd(int fd);

// Bytes queued for reading (FIONREAD). Used to tell an empty SEQPACKET
// message from end-of-file.
SysResult QueuedInput(int fd);
// Bytes written but not yet read by the peer (SIOCOUTQ on Linux).
SysResult QueuedOutput(int fd);
SysResult SendBufferSize(int fd);
// The RLIMIT_NOFILE soft limit (a very large value when unlimited).
SysResult OpenFileLimit();
// 1 when the peer has shut down its writing side (POLLRDHUP), 0 otherwise.
SysResult PeerHungUp(int fd);

// getsockname / getpeername images. An unconnected socket gives an empty
// peer image rather than an error.
SysResult LocalAddress(int fd, std::vector<uint8_t>* out);
SysResult PeerAddress(int fd, std::vector<uint8_t>* out);

}  // namespace fdpass

#endif  // FDPASS_UNIX_SOCKET_H_
