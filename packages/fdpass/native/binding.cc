// The addon's entry: the module's exports, and the plain functions that
// validate JS arguments, call the C++ syscall layer (unix_socket,
// unix_datagram, scm_rights, peer_cred, sockaddr_image, memfd) and turn
// errno-style results into JS values or errors. The watchers are
// watcher_binding.cc's, recv is recv_binding.cc's, per-environment state is
// addon_data.h's (instance data: the addon is context-aware and loads in
// worker threads).
#include <napi.h>
#include <uv.h>

#include <sys/socket.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "addon_data.h"
#include "errno_names.h"
#include "memfd.h"
#include "napi_args.h"
#include "nested_poll.h"
#include "peer_cred.h"
#include "process_handle.h"
#include "recv_binding.h"
#include "scm_rights.h"
#include "sockaddr_image.h"
#include "spawn_binding.h"
#include "sys_result.h"
#include "unix_datagram.h"
#include "unix_socket.h"
#include "watcher_binding.h"

namespace fdpass {
namespace {

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

// sendMany(fd, data: Uint8Array, layout: Int32Array, fds: Int32Array, count):
// sends `count` messages (SOCK_SEQPACKET or SOCK_DGRAM) in one sendmmsg.
// layout holds (bytes, fdCount) per message; data and fds hold the messages'
// bytes and fds back to back. Returns the messages sent (at most 64 per
// call), or -errno when none was.
Napi::Value SendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "sendMany(fd, data: Uint8Array, layout: Int32Array, fds: Int32Array, count 1..64)";
  const uint8_t* data = nullptr;
  size_t len = 0;
  size_t layout_len = 0;
  size_t fds_len = 0;
  if (info.Length() != 5 || !IsFd(info[0]) || !BytesOf(info[1], &data, &len) || !IsInt(info[4])) {
    Usage(env, usage);
  }
  const int32_t* layout = Int32Elements(info[2], &layout_len);
  const int32_t* fds = Int32Elements(info[3], &fds_len);
  int count = ToInt(info[4]);
  if (layout == nullptr || fds == nullptr || count < 1 || count > 64 ||
      layout_len < 2 * static_cast<size_t>(count)) {
    Usage(env, usage);
  }
  // Every length and fd is checked before the syscall reads them.
  int32_t lens[64];
  int32_t fd_counts[64];
  size_t bytes_total = 0;
  size_t fds_total = 0;
  for (int i = 0; i < count; i++) {
    int32_t bytes = layout[2 * i];
    int32_t nfds = layout[2 * i + 1];
    if (bytes < 0 || nfds < 0 || nfds > kMaxFdsPerMessage) Usage(env, usage);
    bytes_total += static_cast<size_t>(bytes);
    fds_total += static_cast<size_t>(nfds);
    lens[i] = bytes;
    fd_counts[i] = nfds;
  }
  if (bytes_total > len || fds_total > fds_len) Usage(env, usage);
  for (size_t i = 0; i < fds_total; i++) {
    if (fds[i] < 0) Usage(env, usage);
  }
  SysResult r = SendManyWithFds(ToInt(info[0]), data, lens, reinterpret_cast<const int*>(fds),
                                fd_counts, static_cast<size_t>(count));
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

// Fills out[0..2] with pid, uid and gid rather than returning an object:
// building one here (three named properties from C strings) cost as much
// as the getsockopt, and this runs for every broker client and handoff.
// A Float64Array holds an unsigned 32-bit uid and a pid of -1 exactly.
Napi::Value PeerCreds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t slots = 0;
  double* out = info.Length() == 2 ? Float64Elements(info[1], &slots) : nullptr;
  if (out == nullptr || slots < 3 || !IsFd(info[0])) {
    Usage(env, "peerCredentials(fd, out: Float64Array(3))");
  }
  PeerCredentials cred;
  SysResult r = ReadPeerCredentials(ToInt(info[0]), &cred);
  if (!r.ok()) throw SystemError(env, r);
  out[0] = static_cast<double>(cred.pid);
  out[1] = static_cast<double>(cred.uid);
  out[2] = static_cast<double>(cred.gid);
  return env.Undefined();
}

// On every cached connect of a client (the endpoint cache): one crossing,
// and a number back rather than an object.
Napi::Value PeerIsProcessBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // pid and uid are checked in process-handle.ts (a uid may pass 2^31).
  if (info.Length() != 4 || !IsFd(info[0]) || !IsFd(info[1]) || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    Usage(env, "peerIsProcess(fd, pidfd, pid, uid)");
  }
  int verdict = PeerIsProcess(ToInt(info[0]), ToInt(info[1]),
                              info[2].As<Napi::Number>().Int64Value(),
                              info[3].As<Napi::Number>().Int64Value());
  return Napi::Number::New(env, verdict);
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
  c.Set("BATCH_SHORT", kBatchShort);
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

// The shared epoll set's counters, or null where there is none. For tests
// and benches.
Napi::Value NestedPollStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NestedPoll* nested = env.GetInstanceData<AddonData>()->tracker->nested;
  if (nested == nullptr) return env.Null();
  NestedPoll::Stats st = nested->stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("epollFd", st.epoll_fd);
  o.Set("entries", static_cast<double>(st.entries));
  o.Set("registered", static_cast<double>(st.registered));
  o.Set("wakes", static_cast<double>(st.wakes));
  o.Set("stale", static_cast<double>(st.stale));
  return o;
}

// Runs when this environment (e.g. a worker) is torn down: sockets JS never
// closed must not outlive it, and Node must wait until their poll handles
// are fully closed before it may unload this library.
void OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* tracker = static_cast<HandleTracker*>(arg);
  tracker->tearing_down = true;
  ShutdownLiveWatchers(tracker);
  if (tracker->nested != nullptr) {
    tracker->closing++;
    tracker->nested->Close(&OnHandleClosed, tracker);
    tracker->nested = nullptr;
  }
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

  // The shared epoll set is made now rather than on first use, so it is
  // already open when callers (tests counting /proc/self/fd) take a baseline.
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr) {
    NestedFor(data->tracker, loop);
  }

  DefineWatcher(env, exports);
  exports.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  exports.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  exports.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  exports.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  exports.Set("send", Napi::Function::New<Send>(env, "send"));
  exports.Set("sendMany", Napi::Function::New<SendMany>(env, "sendMany"));
  exports.Set("recv", Napi::Function::New<Recv>(env, "recv"));
  exports.Set("takeReceived", Napi::Function::New<TakeReceived>(env, "takeReceived"));
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
  // A pid passes the same check as an fd: a non-negative int.
  exports.Set("pidfdOpen", Napi::Function::New<FdQueryOrThrow<OpenProcessHandle>>(env, "pidfdOpen"));
  exports.Set("processExited", Napi::Function::New<FdQuery<ProcessHasExited>>(env, "processExited"));
  exports.Set("peerIsProcess", Napi::Function::New<PeerIsProcessBinding>(env, "peerIsProcess"));
  exports.Set("decodeSockaddr", Napi::Function::New<Decode>(env, "decodeSockaddr"));
  exports.Set("nestedPollStats", Napi::Function::New<NestedPollStats>(env, "nestedPollStats"));
  DefineSpawnBindings(env, exports);
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
