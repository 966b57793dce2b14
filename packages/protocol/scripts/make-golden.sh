#!/usr/bin/env bash
# Produces the golden encodings with Google's protoc (Debian package
# protobuf-compiler), never with the encoder under test:
#   golden/<Type>.<case>.txtpb  --protoc --encode-->  golden/<Type>.<case>.bin
# Usage: scripts/make-golden.sh [--check]   (--check: compare, write nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 2; }
check=0; [ "${1:-}" = "--check" ] && check=1
status=0
for input in golden/*.txtpb; do
  base=${input%.txtpb}
  type=$(basename "$base"); type=${type%%.*}
  out=$(mktemp)
  protoc -I proto --encode="running_process.broker.v1.$type" proto/broker_v1.proto <"$input" >"$out"
  if [ "$check" = 1 ]; then
    cmp -s "$out" "$base.bin" || { echo "golden differs: $base.bin" >&2; status=1; }
    rm -f "$out"
  else
    mv "$out" "$base.bin"; chmod 644 "$base.bin"
  fi
done
exit $status
