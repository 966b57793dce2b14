// posix_spawn plus pidfd_open, see process_spawn.h for why not fork().
#include "process_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>

#include "process_handle.h"

namespace fdpass {
namespace {

// The spawn attributes and file actions are plain C objects with init and
// destroy calls; this wrapper destroys one on every return path.
template <typename T, int (*Init)(T*), int (*Destroy)(T*)>
class SpawnObject {
 public:
  SpawnObject() { ok_ = Init(&value_) == 0; }
  ~SpawnObject() {
    if (ok_) Destroy(&value_);
  }
  SpawnObject(const SpawnObject&) = delete;
  SpawnObject& operator=(const SpawnObject&) = delete;
  bool ok() const { return ok_; }
  T* get() { return &value_; }

 private:
  T value_;
  bool ok_ = false;
};

using FileActions = SpawnObject<posix_spawn_file_actions_t, posix_spawn_file_actions_init,
                                posix_spawn_file_actions_destroy>;
using SpawnAttributes =
    SpawnObject<posix_spawnattr_t, posix_spawnattr_init, posix_spawnattr_destroy>;

// Two file actions newer than the glibc our prebuilds promise (2.28, as
// Node 20 itself): addchdir_np is 2.29, addclosefrom_np 2.34. Linking them
// would stop the addon loading on older systems, so they are looked up when
// first needed, through libuv's dlopen of the running program (no versioned
// reference of ours). Null where the C library has none.
using AddChdir = int (*)(posix_spawn_file_actions_t*, const char*);
using AddClosefrom = int (*)(posix_spawn_file_actions_t*, int);

struct OptionalActions {
  AddChdir add_chdir = nullptr;
  AddClosefrom add_closefrom = nullptr;
};

const OptionalActions& Optional() {
  static const OptionalActions actions = [] {
    OptionalActions found;
    uv_lib_t program;
    if (uv_dlopen(nullptr, &program) != 0) {
      uv_dlclose(&program);
      return found;
    }
    void* symbol = nullptr;
    if (uv_dlsym(&program, "posix_spawn_file_actions_addchdir_np", &symbol) == 0) {
      found.add_chdir = reinterpret_cast<AddChdir>(symbol);
    }
    if (uv_dlsym(&program, "posix_spawn_file_actions_addclosefrom_np", &symbol) == 0) {
      found.add_closefrom = reinterpret_cast<AddClosefrom>(symbol);
    }
    // The program stays loaded whatever we do: this only drops our handle.
    uv_dlclose(&program);
    return found;
  }();
  return actions;
}

// A close-on-exec duplicate of fd numbered at least `floor`: the dup2
// actions then never overwrite a source another action still needs.
int DuplicateAbove(int fd, int floor) { return fcntl(fd, F_DUPFD_CLOEXEC, floor); }

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void CloseAll(std::vector<int>* fds) {
  for (int& fd : *fds) {
    if (fd >= 0) CloseQuietly(fd);
    fd = -1;
  }
}

}  // namespace

PreparedSpawn::~PreparedSpawn() {
  CloseSources();
  CloseAll(&parent_ends_);
}

void PreparedSpawn::CloseSources() { CloseAll(&sources_); }

SysResult PrepareSpawn(const SpawnRequest& request, PreparedSpawn* out) {
  const int count = static_cast<int>(request.stdio.size());
  // Above the child's stdio range, and above 0-2 whatever the range.
  const int floor = count < 3 ? 3 : count;
  out->sources_.assign(request.stdio.size(), -1);
  out->parent_ends_.assign(request.stdio.size(), -1);
  for (int i = 0; i < count; i++) {
    const int spec = request.stdio[i];
    if (spec >= 0) {
      int dup = DuplicateAbove(spec, floor);
      if (dup < 0) return SysResult::Fail(errno, "fcntl");
      out->sources_[i] = dup;
    } else if (spec == kStdioPipe) {
      // A socket pair, as libuv gives a child's 'pipe' stdio: the child's
      // end stays blocking (it is the child's stdout), ours is not.
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return SysResult::Fail(errno, "socketpair");
      }
      out->parent_ends_[i] = pair[0];
      int dup = DuplicateAbove(pair[1], floor);
      int error = errno;
      CloseQuietly(pair[1]);
      if (dup < 0) return SysResult::Fail(error, "fcntl");
      out->sources_[i] = dup;
      int flags = fcntl(pair[0], F_GETFL);
      if (flags < 0 || fcntl(pair[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        return SysResult::Fail(errno, "fcntl");
      }
    } else if (spec != kStdioNull) {
      return SysResult::Fail(EINVAL, "posix_spawn");
    }
  }
  return SysResult::Ok(0);
}

SysResult RunSpawn(const SpawnRequest& request, PreparedSpawn* prepared, SpawnedChild* out) {
  SysResult result = [&]() {
    const int count = static_cast<int>(prepared->sources_.size());
    FileActions actions;
    SpawnAttributes attributes;
    if (!actions.ok() || !attributes.ok()) return SysResult::Fail(ENOMEM, "posix_spawn");
    const OptionalActions& optional = Optional();
    int error = 0;
    if (!request.cwd.empty()) {
      if (optional.add_chdir == nullptr) {
        return SysResult::Fail(ENOSYS, "posix_spawn_file_actions_addchdir_np");
      }
      error = optional.add_chdir(actions.get(), request.cwd.c_str());
    }
    for (int i = 0; error == 0 && i < count; i++) {
      const int source = prepared->sources_[i];
      error = source >= 0 ? posix_spawn_file_actions_adddup2(actions.get(), source, i)
                          : posix_spawn_file_actions_addopen(actions.get(), i, "/dev/null",
                                                             i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    // Nothing but the listed fds reaches the child, even an fd someone
    // opened without close-on-exec (before glibc 2.34 only the
    // close-on-exec ones are kept out: every fd Node and fdpass open).
    if (error == 0 && optional.add_closefrom != nullptr) {
      error = optional.add_closefrom(actions.get(), count);
    }
    if (error != 0) return SysResult::Fail(error, "posix_spawn_file_actions");

    // Node ignores SIGPIPE, and an ignored signal stays ignored across exec:
    // the child starts with every signal at its default and none blocked.
    sigset_t all;
    sigset_t none;
    sigfillset(&all);
    sigemptyset(&none);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (request.new_session) flags |= POSIX_SPAWN_SETSID;
    if (posix_spawnattr_setsigdefault(attributes.get(), &all) != 0 ||
        posix_spawnattr_setsigmask(attributes.get(), &none) != 0 ||
        posix_spawnattr_setflags(attributes.get(), flags) != 0) {
      return SysResult::Fail(EINVAL, "posix_spawnattr");
    }

    std::vector<char*> argv = CStrings(request.argv);
    std::vector<char*> envp = CStrings(request.envp);
    pid_t pid = -1;
    error = posix_spawn(&pid, request.file.c_str(), actions.get(), attributes.get(), argv.data(),
                        envp.data());
    if (error != 0) return SysResult::Fail(error, "posix_spawn");

    // The child cannot be reaped before this (only its parent reaps, and
    // this is its parent), so the pid still names it even if it already exited.
    SysResult pidfd = OpenProcessHandle(pid);
    out->pid = pid;
    out->pidfd = pidfd.ok() ? static_cast<int>(pidfd.value) : -1;
    return SysResult::Ok(pid);
  }();
  // The child has its copies (or there is no child): ours go now.
  prepared->CloseSources();
  if (result.ok()) {
    out->parent_ends = prepared->parent_ends_;
    prepared->parent_ends_.assign(prepared->parent_ends_.size(), -1);
  }
  return result;
}

SysResult SpawnProcess(const SpawnRequest& request, SpawnedChild* out) {
  PreparedSpawn prepared;
  SysResult r = PrepareSpawn(request, &prepared);
  return r.ok() ? RunSpawn(request, &prepared, out) : r;
}

SysResult ReapChild(int pid, int* code, int* signal) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return SysResult::Ok(0);
  if (r < 0) {
    // Reaped by someone else (SIGCHLD set to SIG_IGN, say): gone, status unknown.
    if (errno == ECHILD) {
      *code = -1;
      *signal = 0;
      return SysResult::Ok(1);
    }
    return SysResult::Fail(errno, "waitpid");
  }
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  *signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return SysResult::Ok(1);
}

}  // namespace fdpass
