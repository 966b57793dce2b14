// Kernel-reported identity of the process at the other end of a connected
// AF_UNIX socket (SO_PEERCRED on Linux, getpeereid + LOCAL_PEERPID on macOS).
#ifndef FDPASS_PEER_CRED_H_
#define FDPASS_PEER_CRED_H_

#include "sys_result.h"

namespace fdpass {

struct PeerCredentials {
  long pid = -1;
  long uid = -1;
  long gid = -1;
};

SysResult ReadPeerCredentials(int fd, PeerCredentials* out);

}  // namespace fdpass

#endif  // FDPASS_PEER_CRED_H_
