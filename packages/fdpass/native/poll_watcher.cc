// uv_poll integration. uv_close() runs uv_poll_stop, which removes the fd from
// epoll immediately; only the memory release waits for the close callback.
#include "poll_watcher.h"

namespace fdpass {

PollWatcher* PollWatcher::Create(uv_loop_t* loop, int fd, Callback callback, void* context,
                                 int* error) {
  auto* watcher = new PollWatcher();
  int rc = uv_poll_init(loop, &watcher->handle_, fd);
  if (rc != 0) {
    // A handle that failed to initialise was never registered with the
    // loop, so it can be freed directly.
    delete watcher;
    *error = rc;
    return nullptr;
  }
  watcher->handle_.data = watcher;
  watcher->callback_ = callback;
  watcher->context_ = context;
  *error = 0;
  return watcher;
}

int PollWatcher::SetEvents(int events) {
  if (events == events_) return 0;
  int rc = events == 0 ? uv_poll_stop(&handle_) : uv_poll_start(&handle_, events, OnPoll);
  if (rc == 0) events_ = events;
  return rc;
}

void PollWatcher::SetRef(bool ref) {
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&handle_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));
  }
}

void PollWatcher::Close(ClosedCallback closed, void* closed_arg) {
  callback_ = nullptr;
  context_ = nullptr;
  closed_ = closed;
  closed_arg_ = closed_arg;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), OnClosed);
}

void PollWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<PollWatcher*>(handle->data);
  // libuv stops a handle itself when it reports an error (POLLERR), so the
  // recorded mask must follow or a later SetEvents would be skipped.
  if (status < 0) self->events_ = 0;
  if (self->callback_ != nullptr) self->callback_(self->context_, status, events);
}

void PollWatcher::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<PollWatcher*>(handle->data);
  ClosedCallback closed = self->closed_;
  void* arg = self->closed_arg_;
  delete self;
  if (closed != nullptr) closed(arg);
}

}  // namespace fdpass
