// A uv_poll_t on the loop of the environment that created it. Plain libuv, no
// N-API: watcher_binding.cc adapts the callback to JS. The watcher never owns the fd;
// it only watches it, and Close() must be called before the fd is closed so
// libuv has removed it from epoll before the number can be reused.
#ifndef FDPASS_POLL_WATCHER_H_
#define FDPASS_POLL_WATCHER_H_

#include <uv.h>

namespace fdpass {

class PollWatcher {
 public:
  // status is 0 or a negative libuv error; events is a UV_READABLE |
  // UV_WRITABLE mask.
  using Callback = void (*)(void* context, int status, int events);

  // Returns nullptr and sets *error (a negative libuv code, e.g. UV_EEXIST
  // when another handle on this loop already watches fd) on failure.
  static PollWatcher* Create(uv_loop_t* loop, int fd, Callback callback, void* context,
                             int* error);

  // events == 0 stops watching. Returns 0 or a negative libuv error.
  int SetEvents(int events);
  int events() const { return events_; }
  void SetRef(bool ref);

  // Stops watching synchronously and frees the watcher once libuv is done
  // with the handle, then calls closed(closed_arg) if given. The poll
  // callback never runs after Close(); the pointer must not be used again.
  using ClosedCallback = void (*)(void* arg);
  void Close(ClosedCallback closed = nullptr, void* closed_arg = nullptr);

 private:
  PollWatcher() = default;
  ~PollWatcher() = default;
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);

  uv_poll_t handle_;
  Callback callback_ = nullptr;
  void* context_ = nullptr;
  int events_ = 0;
  ClosedCallback closed_ = nullptr;
  void* closed_arg_ = nullptr;
};

}  // namespace fdpass

#endif  // FDPASS_POLL_WATCHER_H_
