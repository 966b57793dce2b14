// Tour, part 2: fd passing between processes. The tour accepts a TCP
// connection, sends its fd over a Unix socket to another process, and the
// TCP client keeps talking on the same connection — now to that process.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdSocket, fdOf, peerCredentials } from '@handoff/fdpass';
import type { Narrator } from './narrate.ts';

export async function fdpassTour(say: Narrator): Promise<void> {
  say.section('2. Handing a live connection to another process (@handoff/fdpass)');
  const dir = mkdtempSync(join(tmpdir(), 'handoff-tour-'));
  const path = join(dir, 'adopter.sock');
  const adopter = spawn(
    process.execPath,
    [
      '--conditions=@handoff/source',
      '--import',
      'tsx',
      join(import.meta.dirname, 'adopter.ts'),
      path,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const tcp = createServer({ pauseOnConnect: true });
  try {
    const [ready] = (await once(adopter.stdout!, 'data')) as [Buffer];
    if (!ready.toString().startsWith('ready')) throw new Error('adopter did not start');
    say.step(`started process ${adopter.pid}, listening on ${path}`);

    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const { port } = tcp.address() as AddressInfo;
    const client = createConnection(port, '127.0.0.1');
    client.setEncoding('utf8');
    const [accepted] = (await once(tcp, 'connection')) as [Socket];
    say.step(`tour (pid ${process.pid}) accepted a TCP connection on port ${port}`);

    const channel = await FdSocket.connect(path, { kind: 'seqpacket' });
    const peer = peerCredentials(channel);
    say.step(`connected to it; SO_PEERCRED says pid ${peer.pid}, uid ${peer.uid}`);
    channel.write(new TextEncoder().encode('take this connection'), [fdOf(accepted)]);
    accepted.destroy(); // our copy only: the connection lives on in the other process
    say.step('sent the connection fd with SCM_RIGHTS and closed our copy');

    const [greeting] = (await once(client, 'data')) as [string];
    say.step(`the TCP client reads: ${greeting.trim()}`);
    client.write('ping');
    const [echo] = (await once(client, 'data')) as [string];
    say.step(`and on the same connection: ${echo.trim()}`);
    client.destroy();
    channel.close();
    const [code] = (await once(adopter, 'exit')) as [number];
    if (code !== 0) throw new Error(`adopter exited with ${code}`);
  } finally {
    tcp.close();
    if (adopter.exitCode === null) adopter.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
