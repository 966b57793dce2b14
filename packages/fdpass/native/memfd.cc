// memfd_create with MFD_CLOEXEC: the fd must not leak into children the
// process spawns (a broker spawns daemons). See memfd.h.
#include "memfd.h"

#include <cerrno>

#if defined(__linux__)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fdpass {

SysResult CreateMemfd(const std::string& name) {
#if defined(__linux__) && defined(SYS_memfd_create)
  // The raw syscall: glibc before 2.27 has no wrapper, and the flag value
  // is the kernel's (MFD_CLOEXEC = 1) either way.
  long fd = syscall(SYS_memfd_create, name.c_str(), 1U /* MFD_CLOEXEC */);
  if (fd < 0) return SysResult::Fail(errno, "memfd_create");
  return SysResult::Ok(fd);
#else
  (void)name;
  return SysResult::Fail(ENOSYS, "memfd_create");
#endif
}

}  // namespace fdpass
