// The JS face of process_spawn.h: argument checks and result arrays.
#include "spawn_binding.h"

#include <string>
#include <utility>
#include <vector>

#include "napi_args.h"
#include "process_spawn.h"

namespace fdpass {
namespace {

bool StringList(const Napi::Value& value, std::vector<std::string>* out) {
  if (!value.IsArray()) return false;
  Napi::Array array = value.As<Napi::Array>();
  const uint32_t length = array.Length();
  out->reserve(length);
  for (uint32_t i = 0; i < length; i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) return false;
    std::string s = item.As<Napi::String>().Utf8Value();
    // A NUL would cut the string short in the child: refuse, do not truncate.
    if (s.find('\0') != std::string::npos) return false;
    out->push_back(std::move(s));
  }
  return true;
}

const char kSpawnUsage[] =
    "spawnProcess(file: string, argv: string[], envp: string[], cwd: string, stdio: "
    "Int32Array, newSession: boolean)";

// The arguments of spawnProcess and spawnProcessAsync, checked.
SpawnRequest RequestFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnRequest request;
  size_t stdio_count = 0;
  int32_t* stdio = info.Length() == 6 ? Int32Elements(info[4], &stdio_count) : nullptr;
  if (stdio == nullptr || !info[0].IsString() || !info[3].IsString() || !info[5].IsBoolean() ||
      !StringList(info[1], &request.argv) || !StringList(info[2], &request.envp)) {
    Usage(env, kSpawnUsage);
  }
  request.file = info[0].As<Napi::String>().Utf8Value();
  request.cwd = info[3].As<Napi::String>().Utf8Value();
  if (request.file.empty() || request.file.find('\0') != std::string::npos ||
      request.cwd.find('\0') != std::string::npos) {
    Usage(env, kSpawnUsage);
  }
  request.stdio.assign(stdio, stdio + stdio_count);
  request.new_session = info[5].As<Napi::Boolean>().Value();
  return request;
}

// [pid, pidfd, our end per stdio entry (-1 where none)]
Napi::Int32Array ChildArray(Napi::Env env, const SpawnedChild& child) {
  Napi::Int32Array out = Napi::Int32Array::New(env, 2 + child.parent_ends.size());
  out[0] = child.pid;
  out[1] = child.pidfd;
  for (size_t i = 0; i < child.parent_ends.size(); i++) out[2 + i] = child.parent_ends[i];
  return out;
}

// spawnProcess(...): the child's Int32Array (ChildArray). Throws.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnRequest request = RequestFrom(info);
  SpawnedChild child;
  SysResult r = SpawnProcess(request, &child);
  if (!r.ok()) throw SystemError(env, r);
  return ChildArray(env, child);
}

// posix_spawn on a libuv pool thread: the calling thread is not paused even
// for the child's exec (about a millisecond for a Node binary, more under
// load). The fds are prepared first, on the calling thread, so the caller
// may close its own as soon as the call returns.
class SpawnWork : public Napi::AsyncWorker {
 public:
  SpawnWork(Napi::Env env, SpawnRequest request)
      : Napi::AsyncWorker(env, "fdpass:spawnProcess"),
        request_(std::move(request)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  SysResult Prepare() { return PrepareSpawn(request_, &prepared_); }
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = RunSpawn(request_, &prepared_, &child_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (result_.ok()) {
      deferred_.Resolve(ChildArray(env, child_));
    } else {
      deferred_.Reject(SystemError(env, result_).Value());
    }
  }

 private:
  SpawnRequest request_;
  PreparedSpawn prepared_;
  SpawnedChild child_;
  SysResult result_;
  Napi::Promise::Deferred deferred_;
};

// spawnProcessAsync(...): a Promise of the child's Int32Array; rejects with
// the error spawnProcess would throw. Usage errors throw at once.
Napi::Value SpawnAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* work = new SpawnWork(env, RequestFrom(info));
  SysResult prepared = work->Prepare();
  if (!prepared.ok()) {
    delete work;
    throw SystemError(env, prepared);
  }
  Napi::Promise promise = work->Promise();
  work->Queue();
  return promise;
}

// reapChild(pid): null while it runs, else [exit code or -1, signal or 0]. Throws.
Napi::Value Reap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsInt(info[0]) || ToInt(info[0]) <= 0) Usage(env, "reapChild(pid)");
  int code = -1;
  int signal = 0;
  SysResult r = ReapChild(ToInt(info[0]), &code, &signal);
  if (!r.ok()) throw SystemError(env, r);
  if (r.value == 0) return env.Null();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, code));
  out.Set(1u, Napi::Number::New(env, signal));
  return out;
}

}  // namespace

void DefineSpawnBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New<Spawn>(env, "spawnProcess"));
  exports.Set("spawnProcessAsync", Napi::Function::New<SpawnAsync>(env, "spawnProcessAsync"));
  exports.Set("reapChild", Napi::Function::New<Reap>(env, "reapChild"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("STDIO_NULL", kStdioNull);
  c.Set("STDIO_PIPE", kStdioPipe);
  exports.Set("spawnConstants", c);
}

}  // namespace fdpass
