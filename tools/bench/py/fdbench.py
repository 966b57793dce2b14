"""Python stdlib baseline for the fdpass suite: socket.send_fds/recv_fds
between two processes, same protocol and same work as c/fdbench.c (the
receiver closes every fd it gets). Not a library; run by the bench.

Usage: python3 fdbench.py <messages> <fds_per_message> [rounds]
Prints one JSON line per timed round on stdout:
  {"fds":N*K,"messages":N,"fds_per_message":K,"seconds":S}
"""

import json
import os
import socket
import sys
import time

MAX_FDS = 253  # SCM_MAX_FD
MSG_BYTES = 8
BASE_FDS = 4
WARMUP_MESSAGES = 1000

MIDDLE = bytes(MSG_BYTES)
LAST = b"\x01" + bytes(MSG_BYTES - 1)


def receiver(sock: socket.socket) -> None:
    recv_fds = socket.recv_fds
    close = os.close
    flags = socket.MSG_CMSG_CLOEXEC
    count = 0
    while True:
        data, fds, msg_flags, _ = recv_fds(sock, MSG_BYTES, MAX_FDS, flags)
        if not data:
            return
        if msg_flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
            raise OSError("recvmsg truncated")
        for fd in fds:
            close(fd)
        count += len(fds)
        if data[0] == 1:
            sock.sendall(count.to_bytes(8, "little"))
            count = 0


def send_round(sock: socket.socket, fds: list[int], n: int) -> int:
    send_fds = socket.send_fds
    middle = [MIDDLE]
    for _ in range(n - 1):
        send_fds(sock, middle, fds)
    send_fds(sock, [LAST], fds)
    ack = sock.recv(8)
    if len(ack) != 8:
        raise OSError("short ack")
    return int.from_bytes(ack, "little")


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("Usage: fdbench.py <messages> <fds_per_message> [rounds]", file=sys.stderr)
        return 2
    n, k = int(argv[1]), int(argv[2])
    rounds = int(argv[3]) if len(argv) == 4 else 1
    if n < 1 or not 0 <= k <= MAX_FDS or rounds < 1:
        print("fdbench.py: bad arguments", file=sys.stderr)
        return 2

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        parent.close()
        try:
            receiver(child)
        finally:
            os._exit(0)
    child.close()

    base = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(BASE_FDS)]
    fds = [base[i % BASE_FDS] for i in range(k)]

    warm = min(n, WARMUP_MESSAGES)
    if send_round(parent, fds, warm) != warm * k:
        print("fdbench.py: warm-up count mismatch", file=sys.stderr)
        return 1
    for _ in range(rounds):
        t0 = time.perf_counter()
        got = send_round(parent, fds, n)
        dt = time.perf_counter() - t0
        if got != n * k:
            print(f"fdbench.py: receiver counted {got} fds, expected {n * k}", file=sys.stderr)
            return 1
        line = {"fds": n * k, "messages": n, "fds_per_message": k, "seconds": dt}
        print(json.dumps(line, separators=(",", ":")), flush=True)
    parent.close()
    _, status = os.waitpid(pid, 0)
    return 0 if os.waitstatus_to_exitcode(status) == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
