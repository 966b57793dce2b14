// sockaddr image decoding. The image is copied into a zeroed sockaddr_storage
// first so that platform layouts (sa_len on BSD) are read by the compiler's
// own struct definitions instead of hand-computed offsets.
#include "sockaddr_image.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace fdpass {

DecodedAddress DecodeSockaddr(const uint8_t* image, size_t len) {
  DecodedAddress out;
  if (len < offsetof(sockaddr, sa_family) + sizeof(sa_family_t)) return out;
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  std::memcpy(&ss, image, len < sizeof(ss) ? len : sizeof(ss));
  out.family = ss.ss_family;
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) out.address = text;
    out.port = ntohs(in->sin_port);
    out.is_inet = true;
  } else if (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) != nullptr) out.address = text;
    out.port = ntohs(in6->sin6_port);
    out.flowinfo = ntohl(in6->sin6_flowinfo);
    out.scope_id = in6->sin6_scope_id;
    out.is_inet6 = true;
  } else if (ss.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t offset = offsetof(sockaddr_un, sun_path);
    size_t max = len > offset ? len - offset : 0;
    if (max > sizeof(un->sun_path)) max = sizeof(un->sun_path);
    if (max > 0 && un->sun_path[0] == '\0') {
      // Abstract namespace (Linux): the name is every byte of the image.
      out.path.assign(un->sun_path, max);
    } else {
      out.path.assign(un->sun_path, strnlen(un->sun_path, max));
    }
    out.is_unix = true;
  }
  return out;
}

}  // namespace fdpass
