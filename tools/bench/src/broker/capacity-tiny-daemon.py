# A tiny daemon for broker.rss.per_attached_daemon: what a real daemon does
# to be attached — take the endpoint the broker bound (HANDOFF_LISTEN_FD, or
# bind HANDOFF_ENDPOINT), register it on the broker's control channel
# (SOCK_SEQPACKET, ChannelRegistration) and answer identity probes (0xB232,
# DESIGN 2.4) with its true pid, exe, start time and boot id — in a few MB,
# so that 1,000 of them fit on one machine (a Node daemon is ~40 MB).
# It serves no requests: the case measures the broker, not the daemon.
# Env from the bench: HANDOFF_BENCH_EXE_BLAKE3, HANDOFF_BENCH_EXE_SHA256 (hex
# hashes of this interpreter's executable, computed once by the bench).
import os, selectors, signal, socket, struct, sys

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field_varint(num, value):
    return varint(num << 3) + varint(value) if value else b''

def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data if data else b''

def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i

def parse(buf):
    fields = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            fields[num], i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            fields[num] = buf[i:i + n]
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError('bad wire type')
    return fields

def framed(kind, protocol, request_id, payload, traceparent=b'', tracestate=b''):
    body = (field_varint(1, 1) + field_varint(2, kind) + field_varint(3, protocol)
            + field_bytes(4, payload) + field_varint(5, request_id)
            + field_bytes(8, traceparent) + field_bytes(9, tracestate))
    return b'\x01' + struct.pack('<I', len(body)) + body

endpoint = os.environ['HANDOFF_ENDPOINT']
service = os.environ.get('HANDOFF_SERVICE_NAME', '')
listen_fd = os.environ.get('HANDOFF_LISTEN_FD')
if listen_fd is not None and listen_fd != '':
    listener = socket.socket(fileno=int(listen_fd))
else:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(endpoint)
# listen() again: the kernel records our credentials for SO_PEERCRED.
listener.listen(64)
listener.setblocking(False)

def start_time_ms():
    with open('/proc/self/stat') as f:
        stat = f.read()
    ticks = int(stat[stat.rindex(')') + 2:].split()[19])
    with open('/proc/stat') as f:
        btime = next(int(l.split()[1]) for l in f if l.startswith('btime'))
    return round(btime * 1000 + ticks * 1000 / os.sysconf('SC_CLK_TCK'))

with open('/proc/sys/kernel/random/boot_id') as f:
    boot_id = f.read().strip()
identity = (field_varint(1, os.getpid()) + field_bytes(2, os.readlink('/proc/self/exe').encode())
            + field_bytes(4, field_bytes(1, service.encode()) + field_bytes(2, endpoint.encode()))
            + field_varint(5, start_time_ms()) + field_bytes(6, boot_id.encode())
            + field_bytes(8, b'blake3') + field_bytes(9, bytes.fromhex(os.environ['HANDOFF_BENCH_EXE_BLAKE3'])))
trailer = b'\x1a\x20' + bytes.fromhex(os.environ['HANDOFF_BENCH_EXE_SHA256'])

control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
control.connect(os.environ['HANDOFF_BROKER_CONTROL'])
registration = field_bytes(1, service.encode()) + field_bytes(2, endpoint.encode())
control.sendall(framed(2, 0xD0FF, 0, registration))
control.setblocking(False)

sel = selectors.DefaultSelector()
buffers = {}

def on_control(sock):
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return
    if not data:
        sys.exit(0)  # the broker went away

def on_accept(sock):
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return
    conn.setblocking(False)
    buffers[conn] = b''
    sel.register(conn, selectors.EVENT_READ, on_conn)

def close(conn):
    sel.unregister(conn)
    buffers.pop(conn, None)
    conn.close()

def on_conn(conn):
    try:
        data = conn.recv(65536)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        return close(conn)
    if not data:
        return close(conn)
    buf = buffers[conn] + data
    while len(buf) >= 5:
        n = struct.unpack_from('<I', buf, 1)[0]
        if len(buf) < 5 + n:
            break
        frame = parse(buf[5:5 + n])
        buf = buf[5 + n:]
        nonce = frame.get(4, b'')
        if frame.get(3) == 0xB232 and len(nonce) == 32:
            conn.setblocking(True)
            conn.sendall(framed(1, 0xB232, frame.get(5, 0), nonce + identity + trailer,
                                frame.get(8, b''), frame.get(9, b'')))
            conn.setblocking(False)
    buffers[conn] = buf

sel.register(control, selectors.EVENT_READ, on_control)
sel.register(listener, selectors.EVENT_READ, on_accept)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    for key, _ in sel.select():
        key.data(key.fileobj)
