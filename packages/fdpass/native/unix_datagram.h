// One datagram to an AF_UNIX SOCK_DGRAM socket, sent from a socket made for
// that one send and closed before returning: what an sd_notify-style client
// needs and Node cannot do. Owns no fd past the call.
#ifndef FDPASS_UNIX_DATAGRAM_H_
#define FDPASS_UNIX_DATAGRAM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "sys_result.h"

namespace fdpass {

// `address` is a filesystem path, or a Linux abstract name given with its
// leading NUL (the address length is then exactly its bytes). value is the
// number of bytes sent. ENAMETOOLONG for an address that does not fit.
SysResult SendUnixDatagram(const std::string& address, const uint8_t* data, size_t len);

}  // namespace fdpass

#endif  // FDPASS_UNIX_DATAGRAM_H_
