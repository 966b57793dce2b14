// The Watcher class JS gets as binding.Watcher: one socket fd and its
// readiness watch (the shared epoll set, or a uv_poll_t of its own).
#ifndef FDPASS_WATCHER_BINDING_H_
#define FDPASS_WATCHER_BINDING_H_

#include <napi.h>

#include "addon_data.h"

namespace fdpass {

Napi::Function DefineWatcher(Napi::Env env);
// Environment teardown: closes every watcher still open. No JS may run.
void ShutdownLiveWatchers(HandleTracker* tracker);

}  // namespace fdpass

#endif  // FDPASS_WATCHER_BINDING_H_
