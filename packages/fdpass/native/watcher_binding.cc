// binding.watch() and the functions that take its handle (watcher_binding.h).
// A watcher's fd and watch are released exactly once, whichever comes first:
// watchClose(), the environment's teardown, or the finalizer of a handle JS
// dropped without closing it.
#include "watcher_binding.h"

#include <uv.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "napi_args.h"
#include "nested_poll.h"
#include "poll_watcher.h"
#include "sys_result.h"

namespace fdpass {

// Watcher: owns one socket fd and the readiness watch on it. JS holds it as
// an External (made by watch(), used by watchEvents, watchRef and
// watchClose), not as an ObjectWrap: wrapping an object and unwrapping it on
// every method call cost about 3,000 instructions per socket, a sixth of a
// broker's whole Hello. The fd is closed exactly once, by watchClose(), by the
// environment's cleanup hook, or by the External's finalizer when JS dropped
// it without closing it.
class Watcher {
  friend void DefineWatcher(Napi::Env env, Napi::Object exports);

 public:
  // Tells a Watcher from an External some other code made.
  static constexpr uint32_t kTag = 0x46445741;  // "FDWA"

  static Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t argc = info.Length();
    if (argc != 3 || !IsFd(info[0]) || !info[1].IsFunction() || !info[2].IsBoolean()) {
      Usage(env, "watch(fd, callback(status, events), fresh)");
    }
    // fresh: fdpass made this fd itself (accept4, socketpair, connect), so it
    // is a non-blocking socket no other watcher knows: it can join the
    // shared epoll set without uv_poll_init's checks.
    bool fresh = info[2].As<Napi::Boolean>().Value();
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "fdpass: no event loop for this environment");
    }
    std::unique_ptr<Watcher> w(new Watcher());
    w->env_ = env;
    // The callback closes over the JS object that owns this watcher. Held
    // strongly from here it would be a GC root keeping that owner, and so
    // this watcher, alive forever: every socket ever opened would leak. So it
    // is held weakly (the JS side keeps it beside the handle: an ordinary
    // cycle the GC can collect), and strongly only while watching (Pin), when
    // it must be there to call.
    if (napi_create_reference(env, info[1], 0, &w->callback_) != napi_ok) {
      throw Napi::Error::New(env, "fdpass: could not reference the watcher's callback");
    }
    // The callback, a closure of this watcher's own, is the async resource
    // async_hooks see: one object fewer to make per socket.
    napi_value resource_name;
    if (napi_create_string_latin1(env, "FdPassWatcher", NAPI_AUTO_LENGTH, &resource_name) !=
            napi_ok ||
        napi_async_init(env, info[1], resource_name, &w->async_context_) != napi_ok) {
      throw Napi::Error::New(env, "fdpass: could not make the watcher's async context");
    }
    napi_value handle;
    if (napi_create_external(env, w.get(), &Finalize, nullptr, &handle) != napi_ok) {
      throw Napi::Error::New(env, "fdpass: could not make the watcher's handle");
    }
    // From here the External's finalizer deletes the Watcher.
    Watcher* self = w.release();
    HandleTracker* tracker = env.GetInstanceData<AddonData>()->tracker;
    // The poll handle is made last: nothing after it can throw, so a
    // half-built Watcher never leaves a registered handle behind.
    int fd = ToInt(info[0]);
    NestedPoll* nested = fresh ? NestedFor(tracker, loop) : nullptr;
    int err = 0;
    if (nested != nullptr) {
      self->entry_ = nested->Add(fd, &Watcher::OnPoll, self);
    } else {
      self->poll_ = PollWatcher::Create(loop, fd, &Watcher::OnPoll, self, &err);
    }
    if (self->poll_ == nullptr && self->entry_ == nullptr) {
      // Ownership passes only on success: the caller still owns fd and
      // decides whether to close it (an adopt() that fails must not close a
      // descriptor the user still holds). The handle, fd-less, is left to
      // the GC.
      throw SystemError(env, SysResult::Fail(-err == 0 ? EINVAL : -err, "uv_poll_init"));
    }
    self->fd_ = fd;
    self->tracker_ = tracker;
    tracker->live.insert(self);
    return Napi::Value(env, handle);
  }

  // The Watcher behind a handle argument, or a usage error.
  static Watcher* From(const Napi::CallbackInfo& info, const char* usage) {
    void* data = nullptr;
    if (info.Length() < 1 || napi_get_value_external(info.Env(), info[0], &data) != napi_ok ||
        data == nullptr || static_cast<Watcher*>(data)->tag_ != kTag) {
      Usage(info.Env(), usage);
    }
    return static_cast<Watcher*>(data);
  }

  ~Watcher() {
    Release();
    tag_ = 0;
  }

  // Called by the environment's async cleanup hook: no JS may run, so only
  // the libuv handle and the fd are released.
  void ShutdownForTeardown() {
    // The async context and the reference belong to an environment that is
    // going away, which frees them itself; releasing them now would call
    // back into a dying env.
    async_context_ = nullptr;
    callback_ = nullptr;
    pinned_ = false;
    Shutdown();
  }

 private:
  // Order matters: uv_close removes the fd from epoll before close() lets
  // the number be reused.
  void Shutdown() {
    if (entry_ != nullptr) {
      // Out of the epoll set before close(): see nested_poll.cc.
      tracker_->nested->Remove(entry_);
      entry_ = nullptr;
    }
    if (poll_ != nullptr) {
      tracker_->closing++;
      poll_->Close(&OnHandleClosed, tracker_);
      poll_ = nullptr;
    }
    if (fd_ >= 0) {
      CloseQuietly(fd_);
      fd_ = -1;
    }
    if (tracker_ != nullptr) {
      tracker_->live.erase(this);
      tracker_ = nullptr;
    }
  }

  // Raw N-API here, not the C++ wrappers: this runs from libuv, outside any
  // JS frame, possibly while a worker is being terminated. The wrappers
  // throw C++ exceptions on every failed call, and building a JS error in an
  // environment that can no longer run JS aborts the process.
  static void OnPoll(void* context, int status, int events) {
    auto* self = static_cast<Watcher*>(context);
    napi_env env = self->env_;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn = nullptr;
    napi_value argv[2];
    napi_value result;
    // Taken before any unpin: while watching, the reference is strong.
    bool have = self->callback_ != nullptr &&
                napi_get_reference_value(env, self->callback_, &fn) == napi_ok && fn != nullptr;
    // A poll error stops the handle inside libuv; drop the pin to match.
    if (status < 0) self->Pin(false);
    if (have && napi_create_int32(env, status, &argv[0]) == napi_ok &&
        napi_create_int32(env, events, &argv[1]) == napi_ok) {
      // The callbacks are arrow functions: `this` is theirs, so the function
      // itself serves as the receiver.
      napi_status st = napi_make_callback(env, self->async_context_, fn, fn, 2, argv, &result);
      if (st == napi_pending_exception) {
        // An exception from a JS listener must surface as
        // 'uncaughtException', exactly as if a core stream had thrown it.
        napi_value exception;
        if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
          napi_fatal_exception(env, exception);
        }
      }
    }
    // Still alive here: the External's finalizer, the only thing that
    // deletes a Watcher, runs from the finalizer queue, never inside a
    // callback. The callback may have closed the watcher, which clears entry_.
    if (self->entry_ != nullptr && ++self->shared_wakes_ == kOwnPollAfterWakes) {
      self->MoveToOwnPoll(env);
    }
    napi_close_handle_scope(env, scope);
  }

  // A socket in the shared epoll set costs each wake-up one more syscall:
  // the loop reports the set, then epoll_wait reads which fds are ready.
  // That suits the many short-lived sockets the set is for (registering one
  // is a single epoll_ctl); a socket still busy after this many wake-ups is
  // likely long-lived (a control channel, a session), so it moves to a
  // uv_poll_t of its own: six syscalls once (uv_poll_init's ADD, DEL and
  // FIONBIO, uv_poll_start's DEL and ADD, the shared set's DEL), one fewer
  // per wake-up after.
  static constexpr uint32_t kOwnPollAfterWakes = 8;

  // Moves a shared-set watch to a uv_poll_t of its own, keeping its events
  // and ref. Readiness is level-triggered, so nothing ready is missed
  // between leaving the set and the loop's next poll. When the uv_poll_t
  // cannot be made, the watch simply stays where it is.
  void MoveToOwnPoll(napi_env env) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
    int err = 0;
    PollWatcher* own = PollWatcher::Create(loop, fd_, &Watcher::OnPoll, this, &err);
    if (own == nullptr) return;
    if (!entry_->ref) own->SetRef(false);
    if (entry_->events != 0 && own->SetEvents(entry_->events) != 0) {
      tracker_->closing++;
      own->Close(&OnHandleClosed, tracker_);
      return;
    }
    tracker_->nested->Remove(entry_);
    entry_ = nullptr;
    poll_ = own;
  }

  // While watching, the callback (and through it the owner, which holds the
  // handle) must not be collected; when idle it may be, and the finalizer
  // then closes the fd.
  void Pin(bool on) {
    if (on == pinned_ || callback_ == nullptr) return;
    uint32_t count = 0;
    napi_status st = on ? napi_reference_ref(env_, callback_, &count)
                        : napi_reference_unref(env_, callback_, &count);
    if (st == napi_ok) pinned_ = on;
  }

  static void Finalize(napi_env, void* data, void*) { delete static_cast<Watcher*>(data); }

  static Napi::Value SetEvents(const Napi::CallbackInfo& info) {
    Watcher* self = From(info, "watchEvents(handle, mask)");
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !IsInt(info[1])) Usage(env, "watchEvents(handle, mask)");
    if (self->poll_ == nullptr && self->entry_ == nullptr) return Napi::Number::New(env, -EBADF);
    int mask = ToInt(info[1]) & (UV_READABLE | UV_WRITABLE);
    int rc = self->entry_ != nullptr ? self->tracker_->nested->SetEvents(self->entry_, mask)
                                     : self->poll_->SetEvents(mask);
    if (rc == 0) self->Pin(mask != 0);
    return Napi::Number::New(env, rc);
  }

  static Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Watcher* self = From(info, "watchRef(handle, boolean)");
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[1].IsBoolean()) Usage(env, "watchRef(handle, boolean)");
    bool ref = info[1].As<Napi::Boolean>().Value();
    if (self->entry_ != nullptr) self->tracker_->nested->SetRef(self->entry_, ref);
    if (self->poll_ != nullptr) self->poll_->SetRef(ref);
    return env.Undefined();
  }

  // Stops watching and closes the fd. Idempotent. The Watcher itself stays
  // until the handle is collected.
  static Napi::Value Close(const Napi::CallbackInfo& info) {
    From(info, "watchClose(handle)")->Release();
    return info.Env().Undefined();
  }

  // Everything a watcher holds, given back once (close, or the finalizer of
  // a handle dropped without it): the pin, the async context, the callback
  // reference, the watch and the fd.
  void Release() {
    Pin(false);
    if (async_context_ != nullptr) napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
    if (callback_ != nullptr) napi_delete_reference(env_, callback_);
    callback_ = nullptr;
    Shutdown();
  }

  PollWatcher* poll_ = nullptr;
  NestedPoll::Entry* entry_ = nullptr;  // instead of poll_ for a fresh fd
  uint32_t shared_wakes_ = 0;           // wake-ups while in the shared set
  int fd_ = -1;
  bool pinned_ = false;
  HandleTracker* tracker_ = nullptr;
  uint32_t tag_ = kTag;
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
  napi_async_context async_context_ = nullptr;
};

void DefineWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("watch", Napi::Function::New<&Watcher::Watch>(env, "watch"));
  exports.Set("watchEvents", Napi::Function::New<&Watcher::SetEvents>(env, "watchEvents"));
  exports.Set("watchRef", Napi::Function::New<&Watcher::SetRef>(env, "watchRef"));
  exports.Set("watchClose", Napi::Function::New<&Watcher::Close>(env, "watchClose"));
}

void ShutdownLiveWatchers(HandleTracker* tracker) {
  // Copy first: each shutdown erases itself from the set.
  std::vector<Watcher*> live(tracker->live.begin(), tracker->live.end());
  for (Watcher* w : live) w->ShutdownForTeardown();
}

}  // namespace fdpass
