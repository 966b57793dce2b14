// The lifetime of the per-environment state declared in addon_data.h: the
// shared epoll set made on first need, and the tracker freed only after the
// last libuv close callback, which may come after the environment is gone.
#include "addon_data.h"

namespace fdpass {

NestedPoll* NestedFor(HandleTracker* tracker, uv_loop_t* loop) {
  if (tracker->nested == nullptr && !tracker->nested_unavailable && !tracker->tearing_down) {
    int err = 0;
    tracker->nested = NestedPoll::Create(loop, &err);
    if (tracker->nested == nullptr) tracker->nested_unavailable = true;
  }
  return tracker->nested;
}

void FinishTeardownIfDone(HandleTracker* tracker) {
  if (!tracker->tearing_down || tracker->closing > 0) return;
  napi_remove_async_cleanup_hook(tracker->hook);
  delete tracker;
}

void OnHandleClosed(void* arg) {
  auto* tracker = static_cast<HandleTracker*>(arg);
  tracker->closing--;
  FinishTeardownIfDone(tracker);
}

}  // namespace fdpass
