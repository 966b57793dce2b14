// A process handle (pidfd, Linux 5.3+): an fd that stands for one process,
// never for its pid number, so a recycled pid cannot pass for it. Plain
// syscalls; binding.cc marshals.
#ifndef FDPASS_PROCESS_HANDLE_H_
#define FDPASS_PROCESS_HANDLE_H_

#include "sys_result.h"

namespace fdpass {

// pidfd_open(pid, 0): value is the new fd (the kernel sets close-on-exec).
// ESRCH when no such process; ENOSYS on kernels before 5.3 or off Linux.
SysResult OpenProcessHandle(int pid);

// value 1 once the process has exited (the pidfd polls readable), else 0.
SysResult ProcessHasExited(int pidfd);

// Whether the peer of connected AF_UNIX socket `fd` is the process behind
// `pidfd`, with uid `uid`, in one call: SO_PEERCRED must name `pid` and
// `uid`, and the process must not have exited (had it, another process
// could hold that pid now). 1: it is; 0: it is not (another process, or
// this one gone); -1: no peer recorded yet (the connect has not completed)
// or the socket cannot be asked.
int PeerIsProcess(int fd, int pidfd, long pid, long uid);

}  // namespace fdpass

#endif  // FDPASS_PROCESS_HANDLE_H_
