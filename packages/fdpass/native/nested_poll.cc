// The per-environment epoll set behind fdpass's own sockets. Level-triggered
// like uv_poll, and events are filtered and mapped exactly as libuv's
// uv__io_poll + uv__poll_io do, so FdSocket sees the same callbacks either
// way. Registrations belong to the open file description, so an fd leaves
// the set (EPOLL_CTL_DEL) before it is closed: its file may live on in
// another process (SCM_RIGHTS) or behind a dup, and would keep the set
// readable forever.
#include "nested_poll.h"

#ifdef __linux__
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#endif

namespace fdpass {

#ifdef __linux__

namespace {

constexpr int kMaxEvents = 64;

uint32_t ToEpoll(int uv_events) {
  uint32_t e = 0;
  if (uv_events & UV_READABLE) e |= EPOLLIN;
  if (uv_events & UV_WRITABLE) e |= EPOLLOUT;
  return e;
}

}  // namespace

NestedPoll* NestedPoll::Create(uv_loop_t* loop, int* error) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    *error = -errno;
    return nullptr;
  }
  auto* self = new NestedPoll();
  self->epoll_fd_ = fd;
  self->poll_ = PollWatcher::Create(loop, fd, &NestedPoll::OnPoll, self, error);
  if (self->poll_ == nullptr) {
    close(fd);
    delete self;
    return nullptr;
  }
  // Always watching; it keeps the loop alive only while some entry that is
  // ref'd watches something (CountActive).
  int rc = self->poll_->SetEvents(UV_READABLE);
  self->poll_->SetRef(false);
  if (rc != 0) {
    self->poll_->Close();
    close(fd);
    delete self;
    *error = rc;
    return nullptr;
  }
  *error = 0;
  return self;
}

NestedPoll::Entry* NestedPoll::Add(int fd, Callback callback, void* context) {
  auto* entry = new Entry{next_id_++, fd, 0, true, callback, context};
  entries_.emplace(entry->id, entry);
  return entry;
}

void NestedPoll::CountActive(const Entry* entry, int delta) {
  if (!entry->ref || entry->events == 0) return;
  int before = active_refs_;
  active_refs_ += delta;
  if ((before == 0) != (active_refs_ == 0)) poll_->SetRef(active_refs_ > 0);
}

int NestedPoll::SetEvents(Entry* entry, int events) {
  if (events == entry->events) return 0;
  int op = entry->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  epoll_event ev{};
  ev.events = ToEpoll(events);
  ev.data.u64 = entry->id;
  int rc = epoll_ctl(epoll_fd_, op, entry->fd, &ev) == 0 ? 0 : -errno;
  // A DEL that fails (ENOENT, EBADF) leaves nothing of ours registered
  // under this fd number either way.
  if (rc != 0 && op != EPOLL_CTL_DEL) return rc;
  CountActive(entry, -1);
  if (op == EPOLL_CTL_ADD) registered_++;
  if (op == EPOLL_CTL_DEL) registered_--;
  entry->events = events;
  CountActive(entry, +1);
  return rc == -ENOENT ? 0 : rc;
}

void NestedPoll::SetRef(Entry* entry, bool ref) {
  if (entry->ref == ref) return;
  CountActive(entry, -1);
  entry->ref = ref;
  CountActive(entry, +1);
}

void NestedPoll::Remove(Entry* entry) {
  (void)SetEvents(entry, 0);
  entries_.erase(entry->id);
  delete entry;
}

NestedPoll::Stats NestedPoll::stats() const {
  return Stats{epoll_fd_, entries_.size(), registered_, wakes_, stale_};
}

void NestedPoll::Close(PollWatcher::ClosedCallback closed, void* closed_arg) {
  for (auto& pair : entries_) delete pair.second;
  entries_.clear();
  // uv_close takes the epoll fd out of the loop's epoll set synchronously,
  // so it may be closed at once.
  poll_->Close(closed, closed_arg);
  poll_ = nullptr;
  close(epoll_fd_);
  delete this;
}

void NestedPoll::OnPoll(void* context, int status, int /*events*/) {
  auto* self = static_cast<NestedPoll*>(context);
  if (status < 0) {
    // libuv stopped the handle on POLLERR (not expected for an epoll fd):
    // re-arm it and let the next turn report again.
    (void)self->poll_->SetEvents(UV_READABLE);
    return;
  }
  self->wakes_++;
  self->Dispatch();
}

void NestedPoll::Dispatch() {
  epoll_event events[kMaxEvents];
  int n;
  do {
    n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++) {
    // Looked up afresh each time: an earlier callback in this batch may have
    // removed this entry, or removed it and reused its fd number.
    auto it = entries_.find(events[i].data.u64);
    if (it == entries_.end()) {
      stale_++;
      continue;
    }
    Entry* entry = it->second;
    if (entry->events == 0) continue;  // stopped earlier in this batch
    uint32_t want = ToEpoll(entry->events);
    uint32_t got = events[i].events & (want | EPOLLERR | EPOLLHUP);
    // As libuv: a lone ERR or HUP is delivered as the events watched, so the
    // read or write that follows finds the error or end-of-file.
    if (got == EPOLLERR || got == EPOLLHUP) got |= want;
    if ((got & EPOLLERR) != 0) {
      // As uv__poll_io: POLLERR stops the watcher and reports UV_EBADF.
      (void)SetEvents(entry, 0);
      entry->callback(entry->context, UV_EBADF, 0);
      continue;
    }
    int uv_events = 0;
    if (got & EPOLLIN) uv_events |= UV_READABLE;
    if (got & EPOLLOUT) uv_events |= UV_WRITABLE;
    if (uv_events != 0) entry->callback(entry->context, 0, uv_events);
  }
}

#else  // !__linux__

NestedPoll* NestedPoll::Create(uv_loop_t*, int* error) {
  *error = UV_ENOSYS;
  return nullptr;
}
NestedPoll::Entry* NestedPoll::Add(int, Callback, void*) { return nullptr; }
int NestedPoll::SetEvents(Entry*, int) { return UV_ENOSYS; }
void NestedPoll::SetRef(Entry*, bool) {}
void NestedPoll::Remove(Entry*) {}
NestedPoll::Stats NestedPoll::stats() const { return Stats{-1, 0, 0, 0, 0}; }
void NestedPoll::Close(PollWatcher::ClosedCallback, void*) {}
void NestedPoll::OnPoll(void*, int, int) {}
void NestedPoll::Dispatch() {}
void NestedPoll::CountActive(const Entry*, int) {}

#endif  // __linux__

}  // namespace fdpass
