// The floor of a handoff written in Node, for broker.connect_to_first_response:
// the least any Node broker can do to route a connection through a second
// process. The "broker" reads nothing (no Hello, no peer check, no parsing):
// it accepts raw fds and passes each to the "daemon" over a seqpacket
// channel, closing its copy. The daemon adopts each fd as a net.Socket and
// echoes what it reads. Its own listener echoes too, for the direct route the
// floor is compared with. Same client, same run: floor ÷ direct is how much
// of the handoff's ratio to direct is the extra process hop itself.
//   bare-handoff.mjs daemon <control.sock> <direct.sock>   prints "ready"
//   bare-handoff.mjs broker <client.sock> <control.sock>   prints "ready"
// The Hello-reading floor (capacity's protocol_floor_ratio) adds the first
// thing any broker that routes by service name must do, and nothing else:
// it waits for the client's first bytes (its Hello, with the request behind
// it) and passes them along with the fd; the daemon writes them back first
// — the size of a Negotiated and a response — then echoes. Its client
// sends a Hello and reads two frames.
//   bare-handoff.mjs hello-daemon <control.sock> <direct.sock>
//   bare-handoff.mjs hello-broker <client.sock> <control.sock>
// The wire floor (capacity's wire_floor_ratio) is the handoff of record
// (DESIGN §2.5) done the cheapest way it can be done right, with none of
// our broker's or SDK's code: the broker checks the client's uid
// (SO_PEERCRED), decodes its Hello and validates it as §2.7 says
// (@handoff/protocol's validateHello, the wire layer's rules), draws a token,
// sends token + HandoffOffer + fd in one sendmsg, holds its copy of the
// client until the ack (the fallback needs it) and then closes it. The offer
// carries the client's Negotiated and the accepted relay as its prelude, and
// the bytes behind the Hello, so the daemon writes the client all three
// frames at once: the fewest writes and wake-ups the sequence allows. The
// daemon checks the token, adopts the fd, writes prelude + echo, and acks
// (the acks of one tick in one write).
//   bare-handoff.mjs wire-daemon <control.sock> <direct.sock>
//   bare-handoff.mjs wire-broker <client.sock> <control.sock>
// The Hello floor (broker.hello_to_reply's floor_*): the reconnect route of
// record (§2.5 step 2, §2.7) the cheapest way it can be done right: the
// client's uid checked (SO_PEERCRED), its Hello decoded and validated, the
// service looked up, and a Negotiated naming the daemon's socket, numbered
// with a connection id, written in one write before the socket is closed.
// The reply is made as our broker makes it: the encoder's bytes for the
// fields that never change, made once per service, then the id.
//   bare-handoff.mjs wire-hello <client.sock> <service>=<version>=<endpoint>
import { randomFillSync } from 'node:crypto';
import { closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { FdAcceptor, FdServer, FdSocket, peerCredentials, socketFromFd } from '@handoff/fdpass';
import {
  CAP_HANDLE_PASSING,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  Hello,
  HelloReply,
  Negotiated,
  PROTOCOL_VERSION,
  requestFrame,
  responseFrame,
  tryDecodeFramed,
  validateHello,
} from '@handoff/protocol';

const [role, first, second] = process.argv.slice(2);
const echo = (socket) => socket.on('data', (chunk) => socket.write(chunk)).on('error', () => {});
// The wire floor's decoding: bad bytes are a refusal, never a crash.
const decoded = (bytes) => {
  try {
    return tryDecodeFramed(bytes);
  } catch {
    return null;
  }
};
const payload = (type, frame) => {
  try {
    return type.decode(frame.payload);
  } catch {
    return null;
  }
};

/**
 * A daemon's own echo listener (the direct route) at `second`; "ready" once
 * it listens, and on SIGTERM both it and the daemon's control listener close.
 */
function serveDirect(control) {
  const direct = createServer(echo);
  direct.listen(second, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => {
    control.close();
    direct.close(() => process.exit(0));
  });
}

/**
 * The wire floors' client listener at `path`, read as the broker reads its
 * clients (one read per readiness event, at most 64 KiB): a client of
 * another uid is closed at once; `onFirst(client, peer, data)` gets the
 * first bytes of every other.
 */
async function listenForClients(path, onFirst) {
  const uid = process.getuid();
  const clients = await FdServer.listen(path, {
    kind: 'stream',
    readBudget: 1,
    maxMessageSize: 64 * 1024,
  });
  clients.on('connection', (client) => {
    const peer = peerCredentials(client);
    if (peer.uid !== uid) return client.close();
    client.on('error', () => client.close());
    client.once('message', ({ data }) => onFirst(client, peer, data));
  });
  return clients;
}

if (role === 'daemon' || role === 'hello-daemon') {
  // The Hello-reading daemon writes back first what its broker read for it.
  const writeBack = role === 'hello-daemon';
  const control = await FdServer.listen(first, { kind: 'seqpacket' });
  control.on('connection', (channel) =>
    channel.on('message', ({ data, fds }) => {
      for (const fd of fds) {
        const socket = echo(socketFromFd(fd));
        if (writeBack) socket.write(data);
      }
    }),
  );
  serveDirect(control);
} else if (role === 'wire-daemon') {
  const control = await FdServer.listen(first, { kind: 'seqpacket' });
  // Tokens are single use: the last 65,536 seen are remembered.
  const used = new Set();
  control.on('connection', (channel) => {
    // Acks made in one tick leave in one write.
    let acks = [];
    const flushAcks = () => {
      channel.write(acks.length === 1 ? acks[0] : Buffer.concat(acks));
      acks = [];
    };
    channel.on('message', ({ data, fds }) => {
      const [fd] = fds;
      if (fd === undefined) return;
      // The token, then the framed offer; the token must be the offer's.
      const token = data.subarray(0, 16);
      const got = decoded(data.subarray(16));
      const offer = got && payload(HandoffOffer, got.frame);
      const key = token.toString('hex');
      const accepted = offer !== null && Buffer.compare(token, offer.token) === 0 && !used.has(key);
      if (accepted) {
        used.add(key);
        if (used.size > 65_536) used.delete(used.values().next().value);
        // A Unix stream socket: the broker accepted it on its own listener.
        const socket = echo(socketFromFd(fd, { transport: 'unix' }));
        socket.write(Buffer.concat([offer.clientPrelude, offer.bufferedClientBytes]));
      } else closeSync(fd);
      if (got === null) return;
      if (acks.length === 0) process.nextTick(flushAcks);
      acks.push(
        encodeFramed(
          responseFrame(got.frame, {
            payload: HandoffAck.encode({
              token,
              accepted,
              correlationId: offer?.correlationId ?? 0n,
            }),
          }),
        ),
      );
    });
  });
  serveDirect(control);
} else if (role === 'wire-broker') {
  const channel = await FdSocket.connect(second, { kind: 'seqpacket' });
  // The daemon's own socket, named in every Negotiated for the reconnect route.
  const endpoint = second.replace(/control\.sock$/, 'direct.sock');
  // Tokens from the CSPRNG, 256 per getrandom.
  const tokens = new Uint8Array(16 * 256);
  let tokenAt = tokens.length;
  const nextToken = () => {
    if (tokenAt === tokens.length) {
      randomFillSync(tokens);
      tokenAt = 0;
    }
    tokenAt += 16;
    return tokens.slice(tokenAt - 16, tokenAt);
  };
  /** Clients offered and not yet acked, by connection id: the broker's copy of each. */
  const pending = new Map();
  let nextId = 1n;
  // Each message holds the acks the daemon made in one tick.
  channel.on('message', ({ data }) => {
    for (let got = tryDecodeFramed(data); got !== null; got = tryDecodeFramed(data)) {
      data = data.subarray(got.consumed);
      const ack = HandoffAck.decode(got.frame.payload);
      const client = pending.get(ack.correlationId);
      pending.delete(ack.correlationId);
      // Not accepted: a broker would now tell the client to reconnect.
      client?.close();
    }
  });
  const clients = await listenForClients(first, (client, peer, data) => {
    // What the client sends next is the daemon's to read.
    client.pause();
    // The Hello arrives whole with the connect (the bench client writes it
    // in one write); one cut short is refused, and counted as an error.
    const got = decoded(data);
    const hello = got && payload(Hello, got.frame);
    if (hello === null || !validateHello(hello, { peerPid: peer.pid }).ok) return client.close();
    const id = nextId++;
    const token = nextToken();
    const negotiated = encodeFramed(
      responseFrame(got.frame, {
        payload: HelloReply.encode({
          result: {
            case: 'negotiated',
            value: Negotiated.create({
              negotiatedProtocol: PROTOCOL_VERSION,
              daemonVersion: hello.wantedVersion,
              backendPipe: endpoint,
              serverCapabilities: CAP_HANDLE_PASSING,
              handlePassedToken: token,
              connectionId: id,
            }),
          },
        }),
      }),
    );
    const relay = encodeFramed(
      eventFrame(
        { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: id },
        { payload: HandoffAck.encode({ token, accepted: true, correlationId: id }) },
      ),
    );
    const offer = encodeFramed(
      requestFrame({
        payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
        requestId: id,
        payload: HandoffOffer.encode({
          token,
          serviceName: hello.serviceName,
          correlationId: id,
          bufferedClientBytes: data.subarray(got.consumed),
          clientPrelude: Buffer.concat([negotiated, relay]),
        }),
      }),
    );
    pending.set(id, client);
    channel.write(Buffer.concat([token, offer]), [client.fd]);
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    clients.close();
    channel.close();
    process.exit(0);
  });
} else if (role === 'wire-hello') {
  const [service, version, endpoint] = second.split('=');
  // HelloReply{negotiated} with field 8 (connection_id) still to come.
  const fixed = Negotiated.encode(
    Negotiated.create({
      negotiatedProtocol: PROTOCOL_VERSION,
      daemonVersion: version,
      backendPipe: endpoint,
    }),
  ).slice();
  const defined = new Map([[service, { version, fixed }]]);
  const varint = (n, out) => {
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return out;
  };
  let nextId = 1;
  const clients = await listenForClients(first, (client, peer, data) => {
    const got = decoded(data);
    const hello = got && payload(Hello, got.frame);
    const target = hello && defined.get(hello.serviceName);
    // Anything but a valid Hello for the defined service and version: closed
    // unanswered (the bench sends none).
    if (
      !target ||
      target.version !== hello.wantedVersion ||
      !validateHello(hello, { peerPid: peer.pid }).ok
    )
      return client.close();
    const tail = varint(nextId++, [8 << 3]);
    const inner = varint(target.fixed.length + tail.length, [(1 << 3) | 2]);
    const body = Buffer.allocUnsafe(inner.length + target.fixed.length + tail.length);
    body.set(inner, 0);
    body.set(target.fixed, inner.length);
    body.set(tail, inner.length + target.fixed.length);
    client.write(encodeFramed(responseFrame(got.frame, { payload: body })));
    if (client.writableLength === 0) client.close();
    else client.once('drain', () => client.close());
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    clients.close();
    process.exit(0);
  });
} else if (role === 'hello-broker') {
  const channel = await FdSocket.connect(second, { kind: 'seqpacket' });
  // As the broker reads a client: one read per readiness event, at most 64 KiB.
  const clients = await FdServer.listen(first, {
    kind: 'stream',
    readBudget: 1,
    maxMessageSize: 64 * 1024,
  });
  clients.on('connection', (client) => {
    client.on('error', () => client.close());
    client.once('message', ({ data }) => {
      channel.write(data, [client.fd]);
      client.close();
    });
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    clients.close();
    channel.close();
    process.exit(0);
  });
} else if (role === 'broker') {
  const channel = await FdSocket.connect(second, { kind: 'seqpacket' });
  const one = Buffer.from([1]);
  const acceptor = await FdAcceptor.listen(first);
  acceptor.on('connections', (fds) => {
    for (const fd of fds) channel.write(one, [fd], { transfer: true });
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    acceptor.close();
    channel.close();
    process.exit(0);
  });
} else {
  process.stderr.write(
    'usage: bare-handoff.mjs [hello-|wire-]daemon|[hello-|wire-]broker <path> <path>\n' +
      '       bare-handoff.mjs wire-hello <path> <service>=<version>=<endpoint>\n',
  );
  process.exit(2);
}
