// Decodes the raw sockaddr images carried in socket sessions into family,
// printable address, port and path. Never trusts the image: every read is
// bounds-checked against the given length.
#ifndef FDPASS_SOCKADDR_IMAGE_H_
#define FDPASS_SOCKADDR_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace fdpass {

struct DecodedAddress {
  int family = -1;       // AF_* value, -1 when the image is too short to say
  std::string address;   // inet/inet6 textual address
  int port = -1;         // inet/inet6 port
  std::string path;      // unix path (abstract names start with '\0')
  bool is_unix = false;
  bool is_inet = false;
  bool is_inet6 = false;
  uint32_t flowinfo = 0;
  uint32_t scope_id = 0;
};

DecodedAddress DecodeSockaddr(const uint8_t* image, size_t len);

}  // namespace fdpass

#endif  // FDPASS_SOCKADDR_IMAGE_H_
