// The argument checks and result conversions declared in napi_args.h.
#include "napi_args.h"

#include <cstring>
#include <string>

#include "errno_names.h"

namespace fdpass {

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

[[noreturn]] void Usage(Napi::Env env, const char* usage) {
  throw Napi::TypeError::New(env, std::string("Usage: ") + usage);
}

namespace {

// The number in v, or false for anything else. One napi_get_value_double,
// which fails for a non-number by itself: the wrappers' IsNumber() first
// would add a napi_typeof to every fd and int argument of every hot call.
bool NumberOf(const Napi::Value& v, double* d) {
  return napi_get_value_double(v.Env(), v, d) == napi_ok;
}

}  // namespace

bool IsFd(const Napi::Value& v) {
  double d = 0;
  return NumberOf(v, &d) && d >= 0 && d <= 2147483647.0 &&
         d == static_cast<double>(static_cast<int>(d));
}

bool IsInt(const Napi::Value& v) {
  double d = 0;
  return NumberOf(v, &d) && d >= -2147483648.0 && d <= 2147483647.0 &&
         d == static_cast<double>(static_cast<int>(d));
}

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

namespace {

// The storage of a typed array of type `want` (its length in *length), or
// nullptr when v is anything else. Raw N-API: one napi_get_typedarray_info
// instead of the several calls the C++ wrappers make (the callers run once
// per message or connection on the hot paths).
void* TypedArrayData(const Napi::Value& v, napi_typedarray_type want, size_t* length,
                     void* empty) {
  napi_env env = v.Env();
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return nullptr;
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, length, &data, nullptr, nullptr) != napi_ok ||
      type != want) {
    return nullptr;
  }
  // An empty array may have no storage; callers read only *length entries.
  return data != nullptr ? data : empty;
}

}  // namespace

int32_t* Int32Elements(const Napi::Value& v, size_t* length) {
  static int32_t none = 0;
  return static_cast<int32_t*>(TypedArrayData(v, napi_int32_array, length, &none));
}

double* Float64Elements(const Napi::Value& v, size_t* length) {
  static double none = 0;
  return static_cast<double*>(TypedArrayData(v, napi_float64_array, length, &none));
}

uint8_t* Uint8Elements(const Napi::Value& v, size_t* length) {
  static uint8_t none = 0;
  return static_cast<uint8_t*>(TypedArrayData(v, napi_uint8_array, length, &none));
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

Napi::Value ErrnoOrValue(Napi::Env env, const SysResult& r) {
  return Napi::Number::New(env, r.ok() ? static_cast<double>(r.value) : -r.error);
}

}  // namespace fdpass
