// binding.Watcher (watcher_binding.h). Its fd and watch are released
// exactly once, whichever comes first: close(), the environment's teardown,
// or the finalizer of an object JS dropped without closing it.
#include "watcher_binding.h"

#include <uv.h>

#include <cerrno>
#include <vector>

#include "napi_args.h"
#include "nested_poll.h"
#include "poll_watcher.h"
#include "sys_result.h"

namespace fdpass {

// Watcher: owns one socket fd and the uv_poll_t that watches it. The fd is
// closed exactly once, by close(), by the environment's cleanup hook, or by
// the finalizer when JS dropped the object without closing it.
class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Watcher",
                       {InstanceMethod<&Watcher::SetEvents>("setEvents"),
                        InstanceMethod<&Watcher::SetRef>("setRef"),
                        InstanceMethod<&Watcher::Close>("close"),
                        InstanceAccessor<&Watcher::GetFd>("fd")});
  }

  Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    Napi::Env env = info.Env();
    size_t argc = info.Length();
    if (argc < 2 || argc > 3 || !IsFd(info[0]) || !info[1].IsFunction() ||
        (argc == 3 && !info[2].IsBoolean())) {
      Usage(env, "new Watcher(fd, callback(status, events), fresh?)");
    }
    // fresh: fdpass made this fd itself (accept4, socketpair, connect), so it
    // is a non-blocking socket no other watcher knows: it can join the
    // shared epoll set without uv_poll_init's checks.
    bool fresh = argc == 3 && info[2].As<Napi::Boolean>().Value();
    int fd = ToInt(info[0]);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "fdpass: no event loop for this environment");
    }
    // The callback closes over the JS socket that owns this watcher. Held
    // strongly from here it would be a GC root keeping that socket, and so
    // this watcher, alive forever: every socket ever opened would leak. So
    // the native side holds it only weakly, and the JS wrapper holds it as a
    // plain property (an ordinary cycle the GC can collect) that JS sets
    // (openWatcher, native-loader.ts): a store V8 caches, where defining it
    // from here cost napi_define_properties about 2,600 instructions per
    // socket. While watching, Pin() keeps the wrapper, and with it the
    // callback, alive.
    Napi::Function callback = info[1].As<Napi::Function>();
    callback_ = Napi::Weak(callback);
    AddonData* data = env.GetInstanceData<AddonData>();
    napi_value resource_name;
    if (napi_create_string_latin1(env, "FdPassWatcher", NAPI_AUTO_LENGTH, &resource_name) !=
            napi_ok ||
        napi_async_init(env, info.This(), resource_name, &async_context_) != napi_ok) {
      throw Napi::Error::New(env, "fdpass: could not make the watcher's async context");
    }
    HandleTracker* tracker = data->tracker;
    // The poll handle is created last: nothing after it can throw, so a
    // half-built Watcher never leaves a registered handle behind.
    NestedPoll* nested = fresh ? NestedFor(tracker, loop) : nullptr;
    int err = 0;
    if (nested != nullptr) {
      entry_ = nested->Add(fd, &Watcher::OnPoll, this);
    } else {
      poll_ = PollWatcher::Create(loop, fd, &Watcher::OnPoll, this, &err);
    }
    if (poll_ == nullptr && entry_ == nullptr) {
      // Ownership passes only on success: the caller still owns fd and
      // decides whether to close it (an adopt() that fails must not close a
      // descriptor the user still holds).
      throw SystemError(env, SysResult::Fail(-err == 0 ? EINVAL : -err, "uv_poll_init"));
    }
    fd_ = fd;
    tracker_ = tracker;
    tracker_->live.insert(this);
  }

  ~Watcher() override {
    DestroyAsyncContext();
    Shutdown();
  }

  // Called by the environment's async cleanup hook: no JS may run, so only
  // the libuv handle and the fd are released.
  void ShutdownForTeardown() {
    // The async context belongs to an environment that is going away;
    // destroying it now would call back into a dying env.
    async_context_ = nullptr;
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
    napi_env env = self->Env();
    // A poll error stops the handle inside libuv; drop the pin to match.
    if (status < 0) self->Pin(false);
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value recv;
    napi_value fn;
    napi_value argv[2];
    napi_value result;
    if (napi_get_reference_value(env, static_cast<napi_ref>(*self), &recv) == napi_ok &&
        napi_get_reference_value(env, static_cast<napi_ref>(self->callback_), &fn) == napi_ok &&
        recv != nullptr && fn != nullptr && napi_create_int32(env, status, &argv[0]) == napi_ok &&
        napi_create_int32(env, events, &argv[1]) == napi_ok) {
      napi_status st = napi_make_callback(env, self->async_context_, recv, fn, 2, argv, &result);
      if (st == napi_pending_exception) {
        // An exception from a JS listener must surface as
        // 'uncaughtException', exactly as if a core stream had thrown it.
        napi_value exception;
        if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
          napi_fatal_exception(env, exception);
        }
      }
    }
    // Still alive here: `recv` (in this scope) holds the JS object. The
    // callback may have closed the watcher, which clears entry_.
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

  // While watching, the JS object must not be collected (the callback needs
  // it); when idle it may be, and the finalizer then closes the fd.
  void Pin(bool on) {
    if (on && !pinned_) {
      Ref();
      pinned_ = true;
    } else if (!on && pinned_) {
      Unref();
      pinned_ = false;
    }
  }

  Napi::Value SetEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !IsInt(info[0])) Usage(env, "watcher.setEvents(mask)");
    if (poll_ == nullptr && entry_ == nullptr) return Napi::Number::New(env, -EBADF);
    int mask = ToInt(info[0]) & (UV_READABLE | UV_WRITABLE);
    int rc = entry_ != nullptr ? tracker_->nested->SetEvents(entry_, mask) : poll_->SetEvents(mask);
    if (rc == 0) Pin(mask != 0);
    return Napi::Number::New(env, rc);
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBoolean()) Usage(env, "watcher.setRef(boolean)");
    bool ref = info[0].As<Napi::Boolean>().Value();
    if (entry_ != nullptr) tracker_->nested->SetRef(entry_, ref);
    if (poll_ != nullptr) poll_->SetRef(ref);
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Pin(false);
    DestroyAsyncContext();
    callback_.Reset();
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  void DestroyAsyncContext() {
    if (async_context_ == nullptr) return;
    napi_async_destroy(Env(), async_context_);
    async_context_ = nullptr;
  }

  PollWatcher* poll_ = nullptr;
  NestedPoll::Entry* entry_ = nullptr;  // instead of poll_ for a fresh fd
  uint32_t shared_wakes_ = 0;           // wake-ups while in the shared set
  int fd_ = -1;
  bool pinned_ = false;
  HandleTracker* tracker_ = nullptr;
  Napi::FunctionReference callback_;
  napi_async_context async_context_ = nullptr;
};

Napi::Function DefineWatcher(Napi::Env env) { return Watcher::Define(env); }

void ShutdownLiveWatchers(HandleTracker* tracker) {
  // Copy first: each shutdown erases itself from the set.
  std::vector<Watcher*> live(tracker->live.begin(), tracker->live.end());
  for (Watcher* w : live) w->ShutdownForTeardown();
}

}  // namespace fdpass
