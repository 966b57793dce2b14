// spawnProcess() and reapChild() for JS (process_spawn.h does the work).
#ifndef FDPASS_SPAWN_BINDING_H_
#define FDPASS_SPAWN_BINDING_H_

#include <napi.h>

namespace fdpass {

void DefineSpawnBindings(Napi::Env env, Napi::Object exports);

}  // namespace fdpass

#endif  // FDPASS_SPAWN_BINDING_H_
