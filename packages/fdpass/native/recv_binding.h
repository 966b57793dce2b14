// binding.recv: one batch of received messages (recvmmsg on SEQPACKET) as
// one Int32Array of records, the fds inside them owned by JS from then on,
// and their bytes, which binding.takeReceived copies into a Buffer of JS's.
// The record codes are shared with src/native-loader.ts.
#ifndef FDPASS_RECV_BINDING_H_
#define FDPASS_RECV_BINDING_H_

#include <napi.h>

namespace fdpass {

// Result codes that end a recv batch; kept in sync with src/native-loader.ts.
constexpr int kBatchDrained = 0;
constexpr int kBatchBudget = 1;
constexpr int kBatchEof = 2;
// A stream read came back short and brought no fds: the queue was empty
// then (the kernel ends a stream read early only after fds, or between
// writers when credentials are passed). Level-triggered polling reports
// anything that came since, so the read that would only say EAGAIN is
// skipped, as libuv does for net.Socket.
constexpr int kBatchShort = 3;

// Per-message codes in a recv record (0 = delivered with its fds).
constexpr int kRecvOk = 0;
constexpr int kRecvTooManyFds = 1;
constexpr int kRecvControlTruncated = 2;
constexpr int kRecvDataTruncated = 3;

Napi::Value Recv(const Napi::CallbackInfo& info);
Napi::Value TakeReceived(const Napi::CallbackInfo& info);

}  // namespace fdpass

#endif  // FDPASS_RECV_BINDING_H_
