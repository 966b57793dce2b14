// binding.recv (recv_binding.h): batching receives into the environment's
// shared buffers, without ever losing or leaking a received fd.
#include "recv_binding.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "addon_data.h"
#include "napi_args.h"
#include "scm_rights.h"
#include "sys_result.h"
#include "unix_socket.h"

namespace fdpass {
namespace {

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

}  // namespace

// recv(fd, records, budget, maxFds, maxBytes, seqpacket): reads up to
// `budget` messages (SEQPACKET: recvmmsg batches). Fills `records`
// (Int32Array): [status, count] then per message [code, bytes, fdCount,
// fds... (only when code is 0)]; status is a kBatch* code or -errno. Returns
// how many bytes the batch holds, every message's in order; they stay here
// until takeReceived copies them out (the next recv drops them). A rejected
// SEQPACKET message contributes no bytes (it is dropped whole), a rejected
// stream chunk does (JS delivers them without fds). A rejected message's fds
// are closed here, before JS could lose them.
// One byte count and one typed array per batch, not objects per message:
// that allocation used to cost more than the recvmsg. The bytes go into a
// Buffer JS allocates (from Node's pool when small): a Buffer made here
// costs an ArrayBuffer, its malloc and a prototype change per batch.
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
  b->held = 0;
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
      // Judged before the loop below clears the chunk's fds. A read that
      // brought fds stopped right after them (the SOCK_STREAM attachment
      // rule): more is likely queued, so reading goes on.
      bool short_read = !seqpacket && chunks[0].fds.empty() && !chunks[0].control_truncated &&
                        chunks[0].bytes > 0 && chunks[0].bytes < max_bytes;
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
      if (!stop && short_read) {
        status = kBatchShort;
        break;
      }
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
    b->held = total;
    return Napi::Number::New(env, static_cast<double>(total));
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

// takeReceived(into: Uint8Array): copies the bytes the last recv holds into
// `into`, exactly as long as recv said, and lets go of them.
Napi::Value TakeReceived(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReceiveBuffers* b = &env.GetInstanceData<AddonData>()->receive;
  size_t len = 0;
  uint8_t* dst = info.Length() == 1 ? Uint8Elements(info[0], &len) : nullptr;
  if (dst == nullptr || len != b->held) {
    Usage(env, "takeReceived(into: Uint8Array as long as the last recv returned)");
  }
  if (!b->staging.empty()) {
    std::memcpy(dst, b->staging.data(), b->staging.size());
    dst += b->staging.size();
  }
  for (const auto& span : b->spans) {
    std::memcpy(dst, span.data, span.len);
    dst += span.len;
  }
  b->staging.clear();
  b->spans.clear();
  b->held = 0;
  return env.Undefined();
}

}  // namespace fdpass
