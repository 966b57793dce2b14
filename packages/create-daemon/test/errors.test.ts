// create-daemon's errors: one branded base, so `instanceof` holds across two
// loaded copies of the package, and each error keeps its stable code.
import { describe, expect, it } from 'vitest';
import { CreateError } from '../src/create.js';
import * as one from '../src/errors.js';
import { KvTemplateError } from '../src/kv-template.js';
import { VersionsError } from '../src/versions.js';

/** A second, separately evaluated copy of errors.ts (the query makes it a new module). */
async function secondCopy(): Promise<typeof one> {
  const url = '../src/errors.js?copy=2';
  return (await import(/* @vite-ignore */ url)) as typeof one;
}

describe('CreateDaemonError', () => {
  it('holds across two loaded copies, for the base and through a subclass', async () => {
    const two = await secondCopy();
    expect(two.CreateDaemonError).not.toBe(one.CreateDaemonError);
    const error = new CreateError('TARGET_NOT_EMPTY', 'not empty');
    expect(error).toBeInstanceOf(two.CreateDaemonError);
    expect(error).toBeInstanceOf(one.CreateDaemonError);
    expect(new two.CreateDaemonError('INTERNAL', 'x')).toBeInstanceOf(one.CreateDaemonError);
    expect(new two.CreateDaemonError('INTERNAL', 'x')).not.toBeInstanceOf(CreateError);
  });

  it('every error has its code and tells its siblings apart', () => {
    const versions = new VersionsError('no range');
    const drift = new KvTemplateError('drifted');
    expect([versions.code, drift.code]).toEqual(['VERSIONS', 'TEMPLATE_DRIFT']);
    expect(versions).toBeInstanceOf(one.CreateDaemonError);
    expect(versions).not.toBeInstanceOf(KvTemplateError);
    expect(drift).not.toBeInstanceOf(CreateError);
    expect({ code: 'VERSIONS' }).not.toBeInstanceOf(one.CreateDaemonError);
  });
});
