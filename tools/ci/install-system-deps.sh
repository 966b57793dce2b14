#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when missing:
#   protobuf-compiler  protoc, to check the golden encodings
#   g++, make, python3 node-gyp builds @handoff/fdpass; python3 is also the
#                      independent fd-passing peer in its tests
#   g++-aarch64-linux-gnu  cross-builds the linux-arm64 prebuild of @handoff/fdpass
#   qemu-user          runs an arm64 node to prove that prebuild loads
#   systemd            systemd-analyze, to verify the broker's user units (no running systemd needed)
#   tmux               a real terminal for the test of `handoff-broker top`
#   b3sum              an independent BLAKE3, to check the running-process address
# Idempotent and quiet when everything is there. Needs root (or sudo).
set -euo pipefail
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v b3sum >/dev/null 2>&1 || need+=(b3sum)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "system packages: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
