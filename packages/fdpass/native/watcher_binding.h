// The watchers JS gets through binding.watch(): one socket fd and its
// readiness watch (the shared epoll set, or a uv_poll_t of its own), held as
// an External handle that watchEvents, watchRef and watchClose take.
#ifndef FDPASS_WATCHER_BINDING_H_
#define FDPASS_WATCHER_BINDING_H_

#include <napi.h>

#include "addon_data.h"

namespace fdpass {

// Adds watch, watchEvents, watchRef and watchClose to exports.
void DefineWatcher(Napi::Env env, Napi::Object exports);
// Environment teardown: closes every watcher still open. No JS may run.
void ShutdownLiveWatchers(HandleTracker* tracker);

}  // namespace fdpass

#endif  // FDPASS_WATCHER_BINDING_H_
