// Starting a child process without fork(), and learning of its exit through
// a pidfd. Plain syscalls, no N-API (spawn_binding.cc adapts them to JS).
//
// Why not child_process.spawn(): libuv forks, and fork() copies the parent's
// page tables while the parent's thread waits for the child's exec. For a
// broker with a warm heap that stalled its event loop for 4-12 ms on every
// daemon (re)start, which every client in flight at that moment paid for.
// posix_spawn() in glibc is clone(CLONE_VM | CLONE_VFORK): nothing is
// copied and the caller waits only until the child has exec'd.
#ifndef FDPASS_PROCESS_SPAWN_H_
#define FDPASS_PROCESS_SPAWN_H_

#include <string>
#include <vector>

#include "sys_result.h"

namespace fdpass {

// What child fd i becomes (SpawnRequest::stdio[i]).
constexpr int kStdioNull = -1;  // /dev/null (read-only for fd 0, write-only otherwise)
constexpr int kStdioPipe = -2;  // a new socket pair; the parent keeps the other end

struct SpawnRequest {
  std::string file;  // a path (searched for nowhere: the caller resolves PATH)
  std::vector<std::string> argv;
  std::vector<std::string> envp;  // "NAME=value" each
  std::string cwd;                // empty: the caller's
  std::vector<int> stdio;         // child fd i: an fd of ours to dup, or kStdio*
  bool new_session = false;       // setsid(), as child_process's `detached`
};

struct SpawnedChild {
  int pid = -1;
  // Readable once the child has exited (pidfd_open); -1 where the kernel has
  // none (before 5.3): the caller polls Reap() instead.
  int pidfd = -1;
  // Per stdio entry: the parent's end of a kStdioPipe (non-blocking,
  // close-on-exec, the caller's to close), else -1.
  std::vector<int> parent_ends;
};

// The fds a spawn needs, made on the caller's thread before the spawn: a
// duplicate of each fd of ours the child gets (so the caller may close its
// own at once, and a source never collides with a target number), and our
// ends of new pipes. Whatever the spawn does not hand over is closed when
// this goes.
class PreparedSpawn {
 public:
  PreparedSpawn() = default;
  ~PreparedSpawn();
  PreparedSpawn(const PreparedSpawn&) = delete;
  PreparedSpawn& operator=(const PreparedSpawn&) = delete;

 private:
  friend SysResult PrepareSpawn(const SpawnRequest& request, PreparedSpawn* out);
  friend SysResult RunSpawn(const SpawnRequest& request, PreparedSpawn* prepared,
                            SpawnedChild* out);
  void CloseSources();
  std::vector<int> sources_;       // child fd i <- sources_[i]; -1: /dev/null
  std::vector<int> parent_ends_;   // per stdio entry, -1 where none
};

// Step one, on the thread that owns the fds in request.stdio (they must stay
// open until it returns, and only until then).
SysResult PrepareSpawn(const SpawnRequest& request, PreparedSpawn* out);

// Step two, on any thread: posix_spawn and pidfd_open. On success the
// parent ends move to *out; on failure no process runs and the error names
// the step. An exec failure (ENOENT, EACCES) is reported here, as
// posix_spawn's result. The prepared sources are closed either way.
SysResult RunSpawn(const SpawnRequest& request, PreparedSpawn* prepared, SpawnedChild* out);

// Both steps at once.
SysResult SpawnProcess(const SpawnRequest& request, SpawnedChild* out);

// waitpid(pid, WNOHANG): value 0 while it runs; 1 once reaped, with
// *code (exit status, or -1) and *signal (terminating signal, or 0).
SysResult ReapChild(int pid, int* code, int* signal);

}  // namespace fdpass

#endif  // FDPASS_PROCESS_SPAWN_H_
