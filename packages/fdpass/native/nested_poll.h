// One epoll set per environment, watched by a single uv_poll_t, for the
// sockets fdpass creates itself (accept4, socketpair, connect): registering
// one costs one epoll_ctl instead of uv_poll_init's ADD + DEL + ioctl and
// uv_poll_start's DEL + ADD. Linux only; elsewhere Create() fails and callers
// use a PollWatcher per fd.
#ifndef FDPASS_NESTED_POLL_H_
#define FDPASS_NESTED_POLL_H_

#include <uv.h>

#include <cstdint>
#include <unordered_map>

#include "poll_watcher.h"

namespace fdpass {

class NestedPoll {
 public:
  // Same contract as PollWatcher::Callback: status 0 or UV_EBADF (POLLERR;
  // the entry is then no longer watching), events a UV_READABLE |
  // UV_WRITABLE mask.
  using Callback = PollWatcher::Callback;

  // One fd in the set. Owned by NestedPoll; callers hold the pointer until
  // Remove().
  struct Entry {
    uint64_t id;
    int fd;
    int events;  // UV mask currently registered (0: not in the epoll set)
    bool ref;
    Callback callback;
    void* context;
  };

  struct Stats {
    int epoll_fd;
    uint64_t entries;     // entries alive (registered or not)
    uint64_t registered;  // entries in the epoll set
    uint64_t wakes;       // times the loop reported the set readable
    uint64_t stale;       // events skipped: their entry was removed earlier in the batch
  };

  // nullptr and *error (negative libuv/errno code) when the platform has no
  // epoll or the set cannot be made.
  static NestedPoll* Create(uv_loop_t* loop, int* error);

  // No syscall: the fd joins the set on its first SetEvents.
  Entry* Add(int fd, Callback callback, void* context);
  // events == 0 removes the fd from the set. 0 or a negative errno.
  int SetEvents(Entry* entry, int events);
  void SetRef(Entry* entry, bool ref);
  // Takes the fd out of the set (if in it) and frees the entry; no callback
  // for it runs afterwards, even for events already fetched.
  void Remove(Entry* entry);
  Stats stats() const;

  // Environment teardown: stops the uv_poll_t (closed() runs once libuv is
  // done with it) and closes the epoll fd. Every entry must be removed first.
  void Close(PollWatcher::ClosedCallback closed, void* closed_arg);

 private:
  NestedPoll() = default;
  ~NestedPoll() = default;
  static void OnPoll(void* context, int status, int events);
  void Dispatch();
  void CountActive(const Entry* entry, int delta);

  int epoll_fd_ = -1;
  PollWatcher* poll_ = nullptr;
  std::unordered_map<uint64_t, Entry*> entries_;
  uint64_t next_id_ = 1;
  uint64_t registered_ = 0;
  uint64_t wakes_ = 0;
  uint64_t stale_ = 0;
  int active_refs_ = 0;  // entries watching something with ref on
};

}  // namespace fdpass

#endif  // FDPASS_NESTED_POLL_H_
