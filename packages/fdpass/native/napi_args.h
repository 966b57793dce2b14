// Checking and converting JS arguments, and errno-style results into JS
// values or errors: what every binding file shares. Raw N-API where a helper
// runs once per message on a hot path.
#ifndef FDPASS_NAPI_ARGS_H_
#define FDPASS_NAPI_ARGS_H_

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "sys_result.h"

namespace fdpass {

// An Error with code (the errno name), errno and syscall, as Node's own.
Napi::Error SystemError(Napi::Env env, const SysResult& r);
// Throws a TypeError "Usage: <usage>".
[[noreturn]] void Usage(Napi::Env env, const char* usage);
bool IsFd(const Napi::Value& v);
bool IsInt(const Napi::Value& v);
inline int ToInt(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
// Returns the bytes of a Uint8Array (Buffer included) or false.
bool BytesOf(const Napi::Value& v, const uint8_t** data, size_t* len);
// The elements of an Int32Array, or nullptr when v is anything else.
int32_t* Int32Elements(const Napi::Value& v, size_t* length);
// The same for a Float64Array.
double* Float64Elements(const Napi::Value& v, size_t* length);
// The same for a Uint8Array (Buffer included), writable.
uint8_t* Uint8Elements(const Napi::Value& v, size_t* length);
// The first `count` entries of an Int32Array fd list, or nullptr on a usage error.
const int32_t* FdListArg(const Napi::Value& list, const Napi::Value& count_arg, size_t* count);
// The value, or -errno: hot paths return errors instead of throwing them.
Napi::Value ErrnoOrValue(Napi::Env env, const SysResult& r);

}  // namespace fdpass

#endif  // FDPASS_NAPI_ARGS_H_
