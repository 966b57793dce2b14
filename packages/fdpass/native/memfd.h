// An anonymous memory-backed file (memfd_create, Linux): a place to keep
// state that an fd can carry to another process, e.g. into a broker's fd
// store. Plain syscall code; binding.cc marshals.
#ifndef FDPASS_MEMFD_H_
#define FDPASS_MEMFD_H_

#include <string>

#include "sys_result.h"

namespace fdpass {

// value is the new fd, close-on-exec. ENOSYS where the platform has no
// memfd_create (macOS); EINVAL for a name the kernel refuses.
SysResult CreateMemfd(const std::string& name);

}  // namespace fdpass

#endif  // FDPASS_MEMFD_H_
