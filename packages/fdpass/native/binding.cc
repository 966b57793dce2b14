// The only file that touches N-API: it validates JS arguments, calls the plain
// C++ syscall layer (unix_socket, scm_rights, peer_cred, sockaddr_image,
// poll_watcher) and turns errno-style results into JS values or errors.
// Per-environment state lives in AddonData (instance data), so the addon is
// context-aware and loads in worker threads.
#include <napi.h>
#include <uv.h>

#include <sys/socket.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "errno_names.h"
#include "peer_cred.h"
#include "poll_watcher.h"
#include "scm_rights.h"
#include "sockaddr_image.h"
#include "sys_result.h"
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

// Everything else one JS environment (main thread or worker) owns.
struct AddonData {
  HandleTracker* tracker = nullptr;
  std::vector<uint8_t> scratch;   // receive buffer shared by this env's sockets
  std::vector<uint64_t> control;  // cmsg buffer; uint64_t keeps cmsghdr alignment
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

// Returns the bytes of a Uint8Array (Buffer included) or false.
bool BytesOf(const Napi::Value& v, const uint8_t** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  auto ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) return false;
  auto u8 = v.As<Napi::Uint8Array>();
  *data = u8.Data();
  *len = u8.ByteLength();
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
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
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

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() != 4 || !IsFd(info[0]) || !BytesOf(info[1], &data, &len) || !IsFd(info[2]) ||
      !(info[3].IsArray() || info[3].IsNull())) {
    Usage(env, "send(fd, data: Uint8Array, offset, fds: number[] | null)");
  }
  size_t offset = static_cast<size_t>(ToInt(info[2]));
  if (offset > len) Usage(env, "send(fd, data, offset <= data.length, fds)");
  int fds[kMaxFdsPerMessage];
  size_t nfds = 0;
  if (info[3].IsArray()) {
    auto arr = info[3].As<Napi::Array>();
    if (arr.Length() > static_cast<uint32_t>(kMaxFdsPerMessage)) {
      // The JS layer rejects this before calling; this is the backstop.
      return Napi::Number::New(env, -EINVAL);
    }
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!IsFd(v)) Usage(env, "send(fd, data, offset, fds: non-negative integers)");
      fds[nfds++] = ToInt(v);
    }
  }
  SysResult r = SendWithFds(ToInt(info[0]), data + offset, len - offset, fds, nfds);
  return ErrnoOrValue(env, r);
}

// Reads up to `budget` messages. Returns a flat array of 3-slot entries, then
// a status (a kBatch* code or -errno). A message is (0, data, fds | null); a
// rejected one is (code, data, fdCount) and its fds are already closed here,
// before JS could lose them. Flat and positional because building one JS
// object per message with named properties costs more than the recvmsg.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !IsFd(info[0]) || !IsInt(info[1]) || !IsInt(info[2]) ||
      !IsInt(info[3]) || !info[4].IsBoolean()) {
    Usage(env, "recv(fd, budget, maxFds, maxBytes, seqpacket)");
  }
  int fd = ToInt(info[0]);
  int budget = ToInt(info[1]);
  int max_fds = ToInt(info[2]);
  int max_bytes = ToInt(info[3]);
  bool seqpacket = info[4].As<Napi::Boolean>().Value();
  if (budget < 1 || max_fds < 0 || max_fds > kMaxFdsPerMessage || max_bytes < 1) {
    Usage(env, "recv(fd, budget >= 1, 0 <= maxFds <= 253, maxBytes >= 1, seqpacket)");
  }
  auto* data = env.GetInstanceData<AddonData>();
  if (data->scratch.size() < static_cast<size_t>(max_bytes)) data->scratch.resize(max_bytes);
  size_t control_len = ControlBufferSize(max_fds);
  size_t words = (control_len + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  if (data->control.size() < words) data->control.resize(words);

  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  int status = kBatchBudget;
  ReceivedChunk chunk;
  for (int i = 0; i < budget; i++) {
    SysResult r = ReceiveWithFds(fd, data->scratch.data(), static_cast<size_t>(max_bytes),
                                 data->control.data(), control_len, &chunk);
    if (!r.ok()) {
      status = (r.error == EAGAIN || r.error == EWOULDBLOCK) ? kBatchDrained : -r.error;
      break;
    }
    const char* error = nullptr;
    if (chunk.fds.size() > static_cast<size_t>(max_fds)) {
      error = "ERR_TOO_MANY_FDS";
    } else if (chunk.control_truncated) {
      error = "ERR_CONTROL_TRUNCATED";
    } else if (chunk.data_truncated) {
      error = "ERR_DATA_TRUNCATED";
    }
    if (error != nullptr) {
      for (int received : chunk.fds) CloseQuietly(received);
      // The bytes still matter on a stream socket: dropping them would
      // corrupt the byte stream, so JS delivers them without the fds.
      out.Set(n++, Napi::String::New(env, error));
      out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, data->scratch.data(), chunk.bytes));
      out.Set(n++, Napi::Number::New(env, static_cast<double>(chunk.fds.size())));
      continue;
    }
    if (chunk.bytes == 0 && chunk.fds.empty()) {
      if (!seqpacket) {
        status = kBatchEof;
        break;
      }
      // On SEQPACKET a zero-length message and end-of-file both read as 0.
      // It is EOF only when the peer has shut down and nothing is queued.
      SysResult hup = PeerHungUp(fd);
      SysResult queued = QueuedInput(fd);
      if (hup.ok() && hup.value == 1 && (!queued.ok() || queued.value == 0)) {
        status = kBatchEof;
        break;
      }
    }
    try {
      out.Set(n, Napi::Number::New(env, 0));
      out.Set(n + 1, Napi::Buffer<uint8_t>::Copy(env, data->scratch.data(), chunk.bytes));
      if (chunk.fds.empty()) {
        out.Set(n + 2, env.Null());
      } else {
        Napi::Array fds = Napi::Array::New(env, chunk.fds.size());
        for (uint32_t k = 0; k < chunk.fds.size(); k++) fds.Set(k, Napi::Number::New(env, chunk.fds[k]));
        out.Set(n + 2, fds);
      }
      n += 3;
    } catch (...) {
      // The fds are ours until JS holds them: if handing them over fails
      // (out of memory), close them rather than leak them.
      for (int received : chunk.fds) CloseQuietly(received);
      throw;
    }
  }
  out.Set(n, Napi::Number::New(env, status));
  return out;
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
  exports.Set("queuedOutput", Napi::Function::New<FdQuery<QueuedOutput>>(env, "queuedOutput"));
  exports.Set("sendBufferSize", Napi::Function::New<FdQuery<SendBufferSize>>(env, "sendBufferSize"));
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
