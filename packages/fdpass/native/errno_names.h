// Symbolic names for errno values. libuv (and so Node's
// util.getSystemErrorName) does not know every errno a socket can return;
// ETOOMANYREFS in particular comes back as "Unknown system error".
#ifndef FDPASS_ERRNO_NAMES_H_
#define FDPASS_ERRNO_NAMES_H_

#include <utility>
#include <vector>

namespace fdpass {

// The name for err, or nullptr when this table does not know it.
const char* ErrnoName(int err);

// Every (errno, name) pair the table knows, for export to JS.
std::vector<std::pair<int, const char*>> KnownErrnoNames();

}  // namespace fdpass

#endif  // FDPASS_ERRNO_NAMES_H_
