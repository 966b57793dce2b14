// Per-environment state (N-API instance data, so the addon is context-aware
// and loads in worker threads): the poll handles still closing, the shared
// epoll set, and the receive buffers every socket of the environment uses.
#ifndef FDPASS_ADDON_DATA_H_
#define FDPASS_ADDON_DATA_H_

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "nested_poll.h"
#include "scm_rights.h"

namespace fdpass {

class Watcher;  // watcher_binding.cc

// Tracks this environment's poll handles until libuv has finished closing
// them. It outlives the napi_env on purpose: when a worker exits, Node may
// unload the addon right after cleanup, so teardown is an async cleanup hook
// that completes only once every close callback (code in this library) has
// run.
struct HandleTracker {
  std::unordered_set<Watcher*> live;  // watchers whose fd is still open
  int closing = 0;                    // uv_close calls not yet called back
  bool tearing_down = false;
  napi_async_cleanup_hook_handle hook = nullptr;
  NestedPoll* nested = nullptr;  // made at load (nested_poll.h)
  bool nested_unavailable = false;
};

// The environment's shared epoll set, or nullptr where there is none (not
// Linux, or it could not be made: callers fall back to a uv_poll_t per fd).
NestedPoll* NestedFor(HandleTracker* tracker, uv_loop_t* loop);

// Receive buffers, shared by this environment's sockets (recv is
// synchronous, so one socket uses them at a time). A batch lands in `slots`
// message-sized slots of `scratch`; when they run out mid-batch the bytes
// received so far move to `staging` so the slots can be reused.
struct ReceiveBuffers {
  std::unique_ptr<uint8_t[]> scratch;  // not zero-filled: pages are touched only as data lands
  size_t scratch_size = 0;
  std::vector<uint64_t> control;       // cmsg buffers; uint64_t keeps cmsghdr alignment
  std::vector<ReceivedChunk> chunks;   // one per slot
  std::vector<uint8_t> staging;
  struct Span {
    const uint8_t* data;
    size_t len;
  };
  std::vector<Span> spans;             // message bytes still in their slots, in order
  size_t held = 0;                     // bytes of the last batch, until takeReceived copies them
  int highest_fd = -1;                 // largest fd the last batch received
};

// Everything else one JS environment (main thread or worker) owns.
struct AddonData {
  HandleTracker* tracker = nullptr;
  ReceiveBuffers receive;
};

// Frees the tracker once teardown has begun and every close has called back.
void FinishTeardownIfDone(HandleTracker* tracker);
// A uv_close callback: one close fewer to wait for (arg: the HandleTracker).
void OnHandleClosed(void* arg);

}  // namespace fdpass

#endif  // FDPASS_ADDON_DATA_H_
