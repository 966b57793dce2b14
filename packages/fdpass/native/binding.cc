// The only file that touches N-API: it validates JS arguments, calls the plain
// C++ syscall layer (unix_socket, unix_datagram, scm_rights, peer_cred,
// sockaddr_image, poll_watcher) and turns errno-style results into JS values or errors.
// Per-environment state lives in AddonData (instance data), so the addon is
// context-aware and loads in worker threads.
#include <napi.h>
#include <uv.h>

#include <sys/socket.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "errno_names.h"
#include "memfd.h"
#include "peer_cred.h"
#include "poll_watcher.h"
#include "scm_rights.h"
#include "sockaddr_image.h"
#include "sys_result.h"
#include "unix_datagram.h"
#include "unix_socket.h"

namespace fdpass {
namespace {

class Watcher;

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
};

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
  int highest_fd = -1;                 // largest fd the last batch received
};

// Everything else one JS environment (main thread or worker) owns.
struct AddonData {
  HandleTracker* tracker = nullptr;
  ReceiveBuffers receive;
  Napi::FunctionReference watcher_constructor;
};

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

// Result codes that end a recv batch; kept in sync with src/native-loader.ts.
constexpr int kBatchDrained = 0;
constexpr int kBatchBudget = 1;
constexpr int kBatchEof = 2;

// Per-message codes in a recv record (0 = delivered with its fds).
constexpr int kRecvOk = 0;
constexpr int kRecvTooManyFds = 1;
constexpr int kRecvControlTruncated = 2;
constexpr int kRecvDataTruncated = 3;

// recv records: a header (status, message count), then per message (code,
// bytes, fd count) followed by the fds when code is kRecvOk.
constexpr size_t kRecordHeader = 2;
constexpr size_t kEntryHeader = 3;

// Slots of one receive batch: at most this many, and at most this many bytes
// of maxMessageSize slots (4 slots of 1 MiB, 16 of the default 256 KiB, 64
// of 64 KiB or less). A larger batch gains little: the syscall is already
// amortised over the slots.
constexpr size_t kMaxSlots = 64;
constexpr size_t kScratchBytes = size_t{4} << 20;

Napi::Error SystemError(Napi::Env env, const SysResult& r) {
  const char* known = ErrnoName(r.error);
  std::string name = known != nullptr ? known : "E" + std::to_string(r.error);
  std::string message = std::string(name) + ": " + std::strerror(r.error) + ", " + r.syscall;
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, name));
  err.Set("errno", Napi::Number::New(env, r.error));
  err.Set("syscall", Napi::String::New(env, r.syscall));
  return err;
}

void Usage(Napi::Env env, const char* usage) {
  throw Napi::TypeError::New(env, std::string("Usage: ") + usage);
}

bool IsFd(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= 2147483647.0 && d == static_cast<double>(static_cast<int>(d));
}

bool IsInt(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= -2147483648.0 && d <= 2147483647.0 && d == static_cast<double>(static_cast<int>(d));
}

int ToInt(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }

// Returns the bytes of a Uint8Array (Buffer included) or false. Raw N-API:
// one napi_get_typedarray_info (send runs this once per message).
bool BytesOf(const Napi::Value& v, const uint8_t** data, size_t* len) {
  napi_env env = v.Env();
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  void* bytes = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &bytes, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    return false;
  }
  static const uint8_t none = 0;
  *data = bytes != nullptr ? static_cast<const uint8_t*>(bytes) : &none;
  return true;
}

// ---------------------------------------------------------------------------
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
    if (info.Length() != 2 || !IsFd(info[0]) || !info[1].IsFunction()) {
      Usage(env, "new Watcher(fd, callback(status, events))");
    }
    int fd = ToInt(info[0]);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "fdpass: no event loop for this environment");
    }
    // The callback closes over the JS socket that owns this watcher. Held
    // strongly from here it would be a GC root keeping that socket, and so
    // this watcher, alive forever: every socket ever opened would leak. So
    // the JS wrapper holds it (a plain property: an ordinary cycle the GC
    // can collect) and the native side only weakly; while watching, Pin()
    // keeps the wrapper, and with it the callback, alive.
    Napi::Function callback = info[1].As<Napi::Function>();
    info.This().As<Napi::Object>().DefineProperty(
        Napi::PropertyDescriptor::Value("callback", callback, napi_default));
    callback_ = Napi::Weak(callback);
    async_context_ =
        std::make_unique<Napi::AsyncContext>(env, "FdPassWatcher", info.This().As<Napi::Object>());
    HandleTracker* tracker = env.GetInstanceData<AddonData>()->tracker;
    // The poll handle is created last: nothing after it can throw, so a
    // half-built Watcher never leaves a registered handle behind.
    int err = 0;
    poll_ = PollWatcher::Create(loop, fd, &Watcher::OnPoll, this, &err);
    if (poll_ == nullptr) {
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
    Shutdown();
  }

  // Called by the environment's async cleanup hook: no JS may run, so only
  // the libuv handle and the fd are released.
  void ShutdownForTeardown() {
    // The async context belongs to an environment that is going away;
    // destroying it now would call back into a dying env.
    (void)async_context_.release();
    Shutdown();
  }

 private:
  // Order matters: uv_close removes the fd from epoll before close() lets
  // the number be reused.
  void Shutdown() {
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
      napi_async_context async = self->async_context_ ? static_cast<napi_async_context>(*self->async_context_) : nullptr;
      napi_status st = napi_make_callback(env, async, recv, fn, 2, argv, &result);
      if (st == napi_pending_exception) {
        // An exception from a JS listener must surface as
        // 'uncaughtException', exactly as if a core stream had thrown it.
        napi_value exception;
        if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
          napi_fatal_exception(env, exception);
        }
      }
    }
    napi_close_handle_scope(env, scope);
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
    if (poll_ == nullptr) return Napi::Number::New(env, -EBADF);
    int mask = ToInt(info[0]) & (UV_READABLE | UV_WRITABLE);
    int rc = poll_->SetEvents(mask);
    if (rc == 0) Pin(mask != 0);
    return Napi::Number::New(env, rc);
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBoolean()) Usage(env, "watcher.setRef(boolean)");
    if (poll_ != nullptr) poll_->SetRef(info[0].As<Napi::Boolean>().Value());
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Pin(false);
    async_context_.reset();
    callback_.Reset();
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  PollWatcher* poll_ = nullptr;
  int fd_ = -1;
  bool pinned_ = false;
  HandleTracker* tracker_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

// ---------------------------------------------------------------------------
// Plain functions.

Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsInt(info[0])) Usage(env, "socketPair(type)");
  int fds[2];
  SysResult r = MakeSocketPair(ToInt(info[0]), fds);
  if (!r.ok()) throw SystemError(env, r);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !IsInt(info[1])) {
    Usage(env, "connect(path, type)");
  }
  bool in_progress = false;
  SysResult r = ConnectUnix(info[0].As<Napi::String>().Utf8Value(), ToInt(info[1]), &in_progress);
  if (!r.ok()) throw SystemError(env, r);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(r.value)));
  out.Set(1u, Napi::Boolean::New(env, in_progress));
  return out;
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[0].IsString() || !IsInt(info[1]) || !IsInt(info[2]) ||
      !IsInt(info[3])) {
    Usage(env, "listen(path, type, backlog, mode)");
  }
  SysResult r = ListenUnix(info[0].As<Napi::String>().Utf8Value(), ToInt(info[1]), ToInt(info[2]),
                           ToInt(info[3]));
  if (!r.ok()) throw SystemError(env, r);
  return Napi::Number::New(env, static_cast<double>(r.value));
}

// Hot paths (accept, send, recv, shutdown, close) return -errno instead of
// throwing: EAGAIN is routine there and exceptions would make it expensive.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsFd(info[0])) Usage(env, "accept(fd)");
  SysResult r = AcceptConnection(ToInt(info[0]));
  return Napi::Number::New(env, r.ok() ? static_cast<double>(r.value) : -r.error);
}

Napi::Value ErrnoOrValue(Napi::Env env, const SysResult& r) {
  return Napi::Number::New(env, r.ok() ? static_cast<double>(r.value) : -r.error);
}

template <SysResult (*Fn)(int)>
Napi::Value FdQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsFd(info[0])) Usage(env, "fn(fd)");
  return ErrnoOrValue(env, Fn(ToInt(info[0])));
}

template <SysResult (*Fn)(int)>
Napi::Value FdQueryOrThrow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsFd(info[0])) Usage(env, "fn(fd)");
  SysResult r = Fn(ToInt(info[0]));
  if (!r.ok()) throw SystemError(env, r);
  return Napi::Number::New(env, static_cast<double>(r.value));
}

// Reads the first `count` entries of an Int32Array fd list (JS packs arrays
// into one, which is much cheaper than reading array elements through
// N-API). Returns nullptr on a usage error.
// The elements of an Int32Array, or nullptr when v is anything else. Raw
// N-API: one napi_get_typedarray_info instead of the several calls the C++
// wrappers make (this runs once per message on the hot paths).
int32_t* Int32Elements(const Napi::Value& v, size_t* length) {
  napi_env env = v.Env();
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return nullptr;
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array) {
    return nullptr;
  }
  // An empty array may have no storage; callers read only *length entries.
  static int32_t none = 0;
  return data != nullptr ? static_cast<int32_t*>(data) : &none;
}

// Reads the first `count` entries of an Int32Array fd list (JS packs arrays
// into one, which is much cheaper than reading array elements through
// N-API). Returns nullptr on a usage error.
const int32_t* FdListArg(const Napi::Value& list, const Napi::Value& count_arg, size_t* count) {
  size_t length = 0;
  const int32_t* fds = Int32Elements(list, &length);
  if (fds == nullptr || !IsInt(count_arg)) return nullptr;
  int n = ToInt(count_arg);
  if (n < 0 || static_cast<size_t>(n) > length) return nullptr;
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0) return nullptr;
  }
  *count = static_cast<size_t>(n);
  return fds;
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "send(fd, data: Uint8Array, offset, fds: Int32Array | null, count)";
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() != 5 || !IsFd(info[0]) || !BytesOf(info[1], &data, &len) || !IsFd(info[2])) {
    Usage(env, usage);
  }
  size_t offset = static_cast<size_t>(ToInt(info[2]));
  if (offset > len) Usage(env, "send(fd, data, offset <= data.length, fds, count)");
  const int32_t* fds = nullptr;
  size_t nfds = 0;
  if (!info[3].IsNull()) {
    fds = FdListArg(info[3], info[4], &nfds);
    if (fds == nullptr) Usage(env, usage);
    // The JS layer rejects this before calling; this is the backstop.
    if (nfds > static_cast<size_t>(kMaxFdsPerMessage)) return Napi::Number::New(env, -EINVAL);
  }
  static_assert(sizeof(int32_t) == sizeof(int), "fds are passed as int32");
  SysResult r = SendWithFds(ToInt(info[0]), data + offset, len - offset,
                            reinterpret_cast<const int*>(fds), nfds);
  return ErrnoOrValue(env, r);
}

// closeFds(fds: Int32Array, count): closes every distinct fd among the first
// `count` once (a number listed twice is closed once: a second close could
// hit an fd another thread just opened). Returns 0, or the first -errno;
// every fd is attempted either way.
Napi::Value CloseFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = 0;
  const int32_t* list = info.Length() == 2 ? FdListArg(info[0], info[1], &n) : nullptr;
  if (list == nullptr) Usage(env, "closeFds(fds: Int32Array, count)");
  // Sorted to skip repeats. On the stack for a message's worth (this runs
  // once per received message); the heap only for longer lists.
  int small[kMaxFdsPerMessage + 3];
  std::vector<int> large;
  int* fds = small;
  if (n > sizeof(small) / sizeof(small[0])) {
    large.resize(n);
    fds = large.data();
  }
  std::copy(list, list + n, fds);
  std::sort(fds, fds + n);
  int first_error = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && fds[i] == fds[i - 1]) continue;
    SysResult r = CloseFd(fds[i]);
    if (!r.ok() && first_error == 0) first_error = r.error;
  }
  return Napi::Number::New(env, -first_error);
}

// dupFds(fds: Int32Array, count): F_DUPFD_CLOEXEC for a whole message.
// Returns an Int32Array of `count` in which repeated source fds share one
// duplicate (so it holds as many distinct fds as the input). On failure
// every duplicate made is closed and the error thrown.
Napi::Value DupFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t n = 0;
  const int32_t* list = info.Length() == 2 ? FdListArg(info[0], info[1], &n) : nullptr;
  if (list == nullptr) Usage(env, "dupFds(fds: Int32Array, count)");
  // A copy: allocating the result may run the GC, which can move a small
  // typed array's storage.
  std::vector<int> fds(list, list + n);
  std::vector<int> dups(n, -1);
  auto close_made = [&]() {
    for (size_t i = 0; i < n; i++) {
      bool first = true;
      for (size_t j = 0; j < i && first; j++) first = fds[j] != fds[i];
      if (first && dups[i] >= 0) CloseQuietly(dups[i]);
    }
  };
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < i; j++) {
      if (fds[j] == fds[i]) {
        dups[i] = dups[j];
        break;
      }
    }
    if (dups[i] >= 0) continue;
    SysResult r = DuplicateCloexec(fds[i]);
    if (!r.ok()) {
      close_made();
      throw SystemError(env, r);
    }
    dups[i] = static_cast<int>(r.value);
  }
  try {
    Napi::Int32Array out = Napi::Int32Array::New(env, n);
    if (n > 0) std::memcpy(out.Data(), dups.data(), n * sizeof(int));
    return out;
  } catch (...) {
    close_made();
    throw;
  }
}

// Closes the fds of records already written (the batch cannot be handed to
// JS after all).
void CloseRecordedFds(const int32_t* rec, size_t entries) {
  size_t pos = kRecordHeader;
  for (size_t e = 0; e < entries; e++) {
    int code = rec[pos];
    size_t nfds = static_cast<size_t>(rec[pos + 2]);
    pos += kEntryHeader;
    if (code != kRecvOk) continue;
    for (size_t k = 0; k < nfds; k++) CloseQuietly(rec[pos + k]);
    pos += nfds;
  }
}

// Makes the buffers hold `slots` slots of max_bytes and control_stride.
void PrepareReceiveBuffers(ReceiveBuffers* b, size_t slots, size_t max_bytes,
                           size_t control_stride) {
  size_t need = slots * max_bytes;
  if (b->scratch_size < need) {
    b->scratch.reset();
    b->scratch_size = 0;
    b->scratch.reset(new uint8_t[need]);
    b->scratch_size = need;
  }
  size_t words = slots * control_stride / sizeof(uint64_t);
  if (b->control.size() < words) b->control.resize(words);
  if (b->chunks.size() < slots) {
    size_t old = b->chunks.size();
    b->chunks.resize(slots);
    // Room for the control buffer's worth of fds, so collecting them after
    // the syscall never allocates (and cannot fail holding unowned fds).
    for (size_t i = old; i < slots; i++) b->chunks[i].fds.reserve(kMaxFdsPerMessage + 1);
  }
  if (b->spans.capacity() < kMaxSlots) b->spans.reserve(kMaxSlots);
}

// Messages one recvmmsg may take without risking the fd table. The kernel
// installs every message's fds before we see any, so fds of a rejected
// message (closed by us right after) would still occupy the table while the
// next messages of the same call arrive; near RLIMIT_NOFILE that could turn
// a message that fits into an MSG_CTRUNC one. So batch only while the table
// has room for twice the worst case, estimated from the highest fd in use
// that we know of; otherwise read one message per syscall, closing a
// rejected message's fds before the next read.
size_t SlotsForFdHeadroom(int fd, int highest_seen, int max_fds, size_t slots) {
  SysResult limit = OpenFileLimit();
  if (!limit.ok()) return 1;
  long in_use = static_cast<long>(std::max(fd, highest_seen)) + 1;
  long headroom = limit.value - in_use;
  long per_message = static_cast<long>(max_fds) + 1;
  if (headroom <= 0) return 1;
  size_t fit = static_cast<size_t>(headroom / (2 * per_message));
  return std::max<size_t>(1, std::min(slots, fit));
}

// On SEQPACKET a zero-length message and end-of-file both read as 0. It is
// EOF only when the peer has shut down and nothing else is queued: neither in
// the kernel nor later in this batch.
bool IsEndOfFile(int fd, const ReceivedChunk* later, size_t later_count) {
  for (size_t j = 0; j < later_count; j++) {
    const ReceivedChunk& c = later[j];
    if (c.bytes > 0 || !c.fds.empty() || c.control_truncated || c.data_truncated) return false;
  }
  SysResult hup = PeerHungUp(fd);
  SysResult queued = QueuedInput(fd);
  return hup.ok() && hup.value == 1 && (!queued.ok() || queued.value == 0);
}

// recv(fd, records, budget, maxFds, maxBytes, seqpacket): reads up to
// `budget` messages (SEQPACKET: recvmmsg batches). Fills `records`
// (Int32Array): [status, count] then per message [code, bytes, fdCount,
// fds... (only when code is 0)]; status is a kBatch* code or -errno. Returns
// one Buffer with the bytes of every message in order (undefined when there
// are none); a rejected SEQPACKET message contributes no bytes (it is
// dropped whole), a rejected stream chunk does (JS delivers them without
// fds). A rejected message's fds are closed here, before JS could lose them.
// One buffer and one typed array per batch, not objects per message: that
// allocation used to cost more than the recvmsg.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "recv(fd, records: Int32Array, budget, maxFds, maxBytes, seqpacket)";
  size_t cap = 0;
  int32_t* rec = info.Length() == 6 ? Int32Elements(info[1], &cap) : nullptr;
  if (rec == nullptr || !IsFd(info[0]) || !IsInt(info[2]) || !IsInt(info[3]) || !IsInt(info[4]) ||
      !info[5].IsBoolean()) {
    Usage(env, usage);
  }
  int fd = ToInt(info[0]);
  int budget = ToInt(info[2]);
  int max_fds = ToInt(info[3]);
  int max_bytes_arg = ToInt(info[4]);
  bool seqpacket = info[5].As<Napi::Boolean>().Value();
  if (budget < 1 || max_fds < 0 || max_fds > kMaxFdsPerMessage || max_bytes_arg < 1) {
    Usage(env, "recv(fd, records, budget >= 1, 0 <= maxFds <= 253, maxBytes >= 1, seqpacket)");
  }
  size_t entry_max = kEntryHeader + static_cast<size_t>(max_fds);
  if (cap < kRecordHeader + entry_max) Usage(env, "recv(fd, records too small for one message, ...)");
  size_t limit = std::min(static_cast<size_t>(budget), (cap - kRecordHeader) / entry_max);
  size_t max_bytes = static_cast<size_t>(max_bytes_arg);
  size_t slots = std::max<size_t>(1, std::min(kMaxSlots, kScratchBytes / max_bytes));
  if (slots > limit) slots = limit;
  size_t control_stride = ControlBufferSize(max_fds);
  control_stride = (control_stride + sizeof(uint64_t) - 1) / sizeof(uint64_t) * sizeof(uint64_t);

  ReceiveBuffers* b = &env.GetInstanceData<AddonData>()->receive;
  size_t per_call = seqpacket ? SlotsForFdHeadroom(fd, b->highest_fd, max_fds, slots) : 1;
  size_t entries = 0;
  rec[0] = kBatchDrained;
  rec[1] = 0;
  try {
    PrepareReceiveBuffers(b, slots, max_bytes, control_stride);
    b->staging.clear();
    b->spans.clear();
    auto* control = reinterpret_cast<uint8_t*>(b->control.data());
    size_t pos = kRecordHeader;
    size_t next_slot = 0;
    int status = kBatchBudget;
    int highest = -1;
    bool stop = false;
    while (!stop && entries < limit) {
      if (next_slot == slots) {
        // Slots exhausted: park the bytes so far and reuse them.
        for (const auto& span : b->spans) {
          b->staging.insert(b->staging.end(), span.data, span.data + span.len);
        }
        b->spans.clear();
        next_slot = 0;
      }
      size_t want = std::min({limit - entries, slots - next_slot, per_call});
      uint8_t* base = b->scratch.get() + next_slot * max_bytes;
      ReceivedChunk* chunks = &b->chunks[next_slot];
      SysResult r =
          seqpacket
              ? ReceiveManyWithFds(fd, base, max_bytes, control + next_slot * control_stride,
                                   control_stride, want, chunks)
              : ReceiveWithFds(fd, base, max_bytes, control + next_slot * control_stride,
                               control_stride, chunks);
      if (!r.ok()) {
        status = (r.error == EAGAIN || r.error == EWOULDBLOCK) ? kBatchDrained : -r.error;
        break;
      }
      size_t got = seqpacket ? static_cast<size_t>(r.value) : 1;
      for (size_t i = 0; i < got; i++) {
        ReceivedChunk& c = chunks[i];
        const uint8_t* bytes = base + i * max_bytes;
        int code = kRecvOk;
        if (c.fds.size() > static_cast<size_t>(max_fds)) {
          code = kRecvTooManyFds;
        } else if (c.control_truncated) {
          code = kRecvControlTruncated;
        } else if (c.data_truncated) {
          code = kRecvDataTruncated;
        }
        if (code == kRecvOk && c.bytes == 0 && c.fds.empty() &&
            (!seqpacket || IsEndOfFile(fd, chunks + i + 1, got - i - 1))) {
          // Whatever follows in this batch is end-of-file too: nothing to
          // close, nothing to deliver.
          status = kBatchEof;
          stop = true;
          break;
        }
        rec[pos] = code;
        rec[pos + 1] = static_cast<int32_t>(c.bytes);
        rec[pos + 2] = static_cast<int32_t>(c.fds.size());
        pos += kEntryHeader;
        for (int received : c.fds) highest = std::max(highest, received);
        if (code == kRecvOk) {
          for (int received : c.fds) rec[pos++] = received;
        } else {
          for (int received : c.fds) CloseQuietly(received);
        }
        c.fds.clear();
        entries++;
        rec[1] = static_cast<int32_t>(entries);
        // The bytes still matter on a stream socket: dropping them would
        // corrupt the byte stream, so JS delivers them without the fds.
        if (c.bytes > 0 && (code == kRecvOk || !seqpacket)) b->spans.push_back({bytes, c.bytes});
      }
      next_slot += got;
      if (!stop && got < want) {
        // recvmmsg stops early only when the queue ran dry (or an error is
        // pending, which the next read reports): skip a syscall that would
        // just say EAGAIN.
        status = kBatchDrained;
        break;
      }
    }
    rec[0] = status;
    if (entries > 0) b->highest_fd = highest;
    size_t total = b->staging.size();
    for (const auto& span : b->spans) total += span.len;
    if (total == 0) return env.Undefined();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, total);
    uint8_t* dst = out.Data();
    if (!b->staging.empty()) {
      std::memcpy(dst, b->staging.data(), b->staging.size());
      dst += b->staging.size();
    }
    for (const auto& span : b->spans) {
      std::memcpy(dst, span.data, span.len);
      dst += span.len;
    }
    return out;
  } catch (const std::bad_alloc&) {
    // The fds are ours until JS holds them: if handing them over fails
    // (out of memory), close them rather than leak them.
    CloseRecordedFds(rec, entries);
    rec[1] = 0;
    throw Napi::Error::New(env, "fdpass: out of memory while receiving");
  } catch (...) {
    CloseRecordedFds(rec, entries);
    rec[1] = 0;
    throw;
  }
}

// sendDatagram(address: string | Uint8Array, data: Uint8Array): bytes sent;
// throws on failure. The address arrives as bytes so that an abstract name
// (leading NUL) reaches the syscall exactly.
Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* address = nullptr;
  size_t address_len = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() != 2 || !BytesOf(info[0], &address, &address_len) ||
      !BytesOf(info[1], &data, &len)) {
    Usage(env, "sendDatagram(address: Uint8Array, data: Uint8Array)");
  }
  std::string addr(reinterpret_cast<const char*>(address), address_len);
  SysResult r = SendUnixDatagram(addr, data, len);
  if (!r.ok()) throw SystemError(env, r);
  return Napi::Number::New(env, static_cast<double>(r.value));
}

// memfdCreate(name: string): a new close-on-exec memfd; throws on failure.
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) Usage(env, "memfdCreate(name: string)");
  SysResult r = CreateMemfd(info[0].As<Napi::String>().Utf8Value());
  if (!r.ok()) throw SystemError(env, r);
  return Napi::Number::New(env, static_cast<double>(r.value));
}

Napi::Value SocketInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsFd(info[0])) Usage(env, "socketInfo(fd)");
  int fd = ToInt(info[0]);
  SysResult family = SocketFamily(fd);
  if (!family.ok()) throw SystemError(env, family);
  SysResult type = SocketType(fd);
  if (!type.ok()) throw SystemError(env, type);
  SysResult protocol = SocketProtocol(fd);
  if (!protocol.ok()) throw SystemError(env, protocol);
  std::vector<uint8_t> local, remote;
  SysResult l = LocalAddress(fd, &local);
  if (!l.ok()) throw SystemError(env, l);
  SysResult p = PeerAddress(fd, &remote);
  if (!p.ok()) throw SystemError(env, p);
  Napi::Object out = Napi::Object::New(env);
  out.Set("family", Napi::Number::New(env, static_cast<double>(family.value)));
  out.Set("type", Napi::Number::New(env, static_cast<double>(type.value)));
  out.Set("protocol", Napi::Number::New(env, static_cast<double>(protocol.value)));
  out.Set("local", Napi::Buffer<uint8_t>::Copy(env, local.data(), local.size()));
  out.Set("remote", Napi::Buffer<uint8_t>::Copy(env, remote.data(), remote.size()));
  return out;
}

Napi::Value PeerCreds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsFd(info[0])) Usage(env, "peerCredentials(fd)");
  PeerCredentials cred;
  SysResult r = ReadPeerCredentials(ToInt(info[0]), &cred);
  if (!r.ok()) throw SystemError(env, r);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, static_cast<double>(cred.pid)));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
  return out;
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* bytes = nullptr;
  size_t len = 0;
  if (info.Length() != 1 || !BytesOf(info[0], &bytes, &len)) {
    Usage(env, "decodeSockaddr(image: Uint8Array)");
  }
  DecodedAddress d = DecodeSockaddr(bytes, len);
  Napi::Object out = Napi::Object::New(env);
  out.Set("family", Napi::Number::New(env, d.family));
  if (d.is_inet || d.is_inet6) {
    out.Set("kind", Napi::String::New(env, d.is_inet ? "inet" : "inet6"));
    out.Set("address", Napi::String::New(env, d.address));
    out.Set("port", Napi::Number::New(env, d.port));
    if (d.is_inet6) {
      out.Set("flowinfo", Napi::Number::New(env, d.flowinfo));
      out.Set("scopeId", Napi::Number::New(env, d.scope_id));
    }
  } else if (d.is_unix) {
    out.Set("kind", Napi::String::New(env, "unix"));
    // Raw bytes: an abstract name may contain any byte, including NUL.
    out.Set("path", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(d.path.data()),
                                                d.path.size()));
  } else {
    out.Set("kind", Napi::String::New(env, "unknown"));
  }
  return out;
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("AF_UNIX", static_cast<int>(AF_UNIX));
  c.Set("AF_INET", static_cast<int>(AF_INET));
  c.Set("AF_INET6", static_cast<int>(AF_INET6));
  c.Set("SOCK_STREAM", static_cast<int>(SOCK_STREAM));
  c.Set("SOCK_DGRAM", static_cast<int>(SOCK_DGRAM));
  c.Set("SOCK_SEQPACKET", static_cast<int>(SOCK_SEQPACKET));
  c.Set("UV_READABLE", static_cast<int>(UV_READABLE));
  c.Set("UV_WRITABLE", static_cast<int>(UV_WRITABLE));
  c.Set("MAX_FDS_PER_MESSAGE", kMaxFdsPerMessage);
  c.Set("BATCH_DRAINED", kBatchDrained);
  c.Set("BATCH_BUDGET", kBatchBudget);
  c.Set("BATCH_EOF", kBatchEof);
  c.Set("RECV_OK", kRecvOk);
  c.Set("RECV_TOO_MANY_FDS", kRecvTooManyFds);
  c.Set("RECV_CONTROL_TRUNCATED", kRecvControlTruncated);
  c.Set("RECV_DATA_TRUNCATED", kRecvDataTruncated);
  c.Set("EAGAIN", static_cast<int>(EAGAIN));
  c.Set("EINPROGRESS", static_cast<int>(EINPROGRESS));
  Napi::Object names = Napi::Object::New(env);
  for (const auto& entry : KnownErrnoNames()) names.Set(std::to_string(entry.first), entry.second);
  c.Set("ERRNO_NAMES", names);
  return c;
}

// Runs when this environment (e.g. a worker) is torn down: sockets JS never
// closed must not outlive it, and Node must wait until their poll handles
// are fully closed before it may unload this library.
void OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* tracker = static_cast<HandleTracker*>(arg);
  tracker->tearing_down = true;
  // Copy first: each shutdown erases itself from the set.
  std::vector<Watcher*> live(tracker->live.begin(), tracker->live.end());
  for (Watcher* w : live) w->ShutdownForTeardown();
  FinishTeardownIfDone(tracker);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  data->tracker = new HandleTracker();
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, data->tracker, &data->tracker->hook) !=
      napi_ok) {
    throw Napi::Error::New(env, "fdpass: could not register the environment cleanup hook");
  }

  Napi::Function watcher = Watcher::Define(env);
  data->watcher_constructor = Napi::Persistent(watcher);
  exports.Set("Watcher", watcher);
  exports.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  exports.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  exports.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  exports.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  exports.Set("send", Napi::Function::New<Send>(env, "send"));
  exports.Set("recv", Napi::Function::New<Recv>(env, "recv"));
  exports.Set("socketType", Napi::Function::New<FdQueryOrThrow<SocketType>>(env, "socketType"));
  exports.Set("socketFamily", Napi::Function::New<FdQueryOrThrow<SocketFamily>>(env, "socketFamily"));
  exports.Set("isListening", Napi::Function::New<FdQueryOrThrow<IsListening>>(env, "isListening"));
  exports.Set("socketError", Napi::Function::New<FdQuery<SocketError>>(env, "socketError"));
  exports.Set("shutdownWrite", Napi::Function::New<FdQuery<ShutdownWrite>>(env, "shutdownWrite"));
  exports.Set("setNonBlocking", Napi::Function::New<FdQueryOrThrow<SetNonBlocking>>(env, "setNonBlocking"));
  exports.Set("dupFd", Napi::Function::New<FdQueryOrThrow<DuplicateCloexec>>(env, "dupFd"));
  exports.Set("closeFd", Napi::Function::New<FdQuery<CloseFd>>(env, "closeFd"));
  exports.Set("closeFds", Napi::Function::New<CloseFds>(env, "closeFds"));
  exports.Set("dupFds", Napi::Function::New<DupFds>(env, "dupFds"));
  exports.Set("queuedOutput", Napi::Function::New<FdQuery<QueuedOutput>>(env, "queuedOutput"));
  exports.Set("sendBufferSize", Napi::Function::New<FdQuery<SendBufferSize>>(env, "sendBufferSize"));
  exports.Set("sendDatagram", Napi::Function::New<SendDatagram>(env, "sendDatagram"));
  exports.Set("memfdCreate", Napi::Function::New<MemfdCreate>(env, "memfdCreate"));
  exports.Set("socketInfo", Napi::Function::New<SocketInfo>(env, "socketInfo"));
  exports.Set("peerCredentials", Napi::Function::New<PeerCreds>(env, "peerCredentials"));
  exports.Set("decodeSockaddr", Napi::Function::New<Decode>(env, "decodeSockaddr"));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace
}  // namespace fdpass

// NODE_API_MODULE pastes the function name into an identifier, so it needs
// an unqualified name.
static Napi::Object InitFdpass(Napi::Env env, Napi::Object exports) {
  return fdpass::Init(env, exports);
}

NODE_API_MODULE(fdpass, InitFdpass)
