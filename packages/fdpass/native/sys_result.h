// Errno-style results shared by the plain C++ syscall layer. Nothing here
// knows about N-API: napi_args.cc turns a failed SysResult into a JS error.
#ifndef FDPASS_SYS_RESULT_H_
#define FDPASS_SYS_RESULT_H_

namespace fdpass {

struct SysResult {
  long value = 0;             // the syscall's result when error == 0
  int error = 0;              // errno when the call failed
  const char* syscall = "";   // which call failed, for the JS error

  bool ok() const { return error == 0; }
  static SysResult Ok(long v) { return SysResult{v, 0, ""}; }
  static SysResult Fail(int err, const char* call) { return SysResult{-1, err, call}; }
};

// close() that never retries on EINTR: on Linux the fd is released even when
// close reports EINTR, so a retry could close an fd another thread just got.
void CloseQuietly(int fd);

}  // namespace fdpass

#endif  // FDPASS_SYS_RESULT_H_
