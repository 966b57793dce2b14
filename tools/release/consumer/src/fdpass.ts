// Scenario 2: an open file's descriptor crosses a Unix socket pair with
// SCM_RIGHTS, and the receiver reads the file through the copy it got.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdSocket } from '@handoff/fdpass';
import { check } from './check.js';

const dir = mkdtempSync(join(tmpdir(), 'consumer-fdpass-'));
const [sender, receiver] = FdSocket.pair('stream');
try {
  const file = join(dir, 'note.txt');
  writeFileSync(file, 'carried by SCM_RIGHTS');
  const fd = openSync(file, 'r');
  sender.write(Buffer.from('here'), [fd]);
  closeSync(fd); // the kernel gave the receiver its own copy
  for await (const message of receiver) {
    check(message.data.toString() === 'here', `data, got ${message.data.toString()}`);
    check(message.fds.length === 1, `one fd, got ${message.fds.length}`);
    const copy = message.fds[0]!;
    const buffer = Buffer.alloc(64);
    const n = readSync(copy, buffer, 0, buffer.length, 0);
    closeSync(copy);
    check(
      buffer.subarray(0, n).toString() === 'carried by SCM_RIGHTS',
      'file read through the passed fd',
    );
    break;
  }
  console.log('fdpass: ok (an fd crossed a socket pair)');
} finally {
  sender.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
