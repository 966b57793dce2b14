// `.servicedef` decoding and mapping (src/rp-compat/servicedef*.ts): golden
// files encoded once with `protoc --encode` from proto/running_process_servicedef.proto
// and the text fixtures beside them (checked in, re-encoded here when protoc is
// installed), each refusal naming its RP field, and hostile bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ServicedefError } from '../../src/rp-compat/errors.js';
import { servicedefToDefinition } from '../../src/rp-compat/servicedef.js';
import {
  decodeServicedef,
  MAX_SERVICEDEF_BYTES,
  MAX_SERVICEDEF_LIST,
  type RpServicedef,
} from '../../src/rp-compat/servicedef-wire.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const protoDir = join(import.meta.dirname, '..', '..', 'proto');
const golden = (name: string) => new Uint8Array(readFileSync(join(fixtures, `${name}.servicedef`)));
const hasProtoc = spawnSync('protoc', ['--version']).status === 0;

function thrown(fn: () => unknown): ServicedefError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ServicedefError);
    return error as ServicedefError;
  }
  throw new Error('expected a ServicedefError');
}

function rp(
  fields: Partial<Omit<RpServicedef, 'versionAllowList'>> & {
    versionAllowList?: readonly string[];
  },
): RpServicedef {
  return {
    serviceName: 'svc',
    binaryPath: '/opt/rp/bin/svc',
    isolation: 1,
    explicitInstance: '',
    perVersionBinaryDir: '',
    minVersion: '1.0.0',
    labels: new Map(),
    ...fields,
    versionAllowList: [...(fields.versionAllowList ?? [])],
  };
}

describe('servicedef golden files', () => {
  it.runIf(hasProtoc).each(['demo-echo', 'private-default', 'explicit-instance'])(
    '%s.servicedef is what protoc encodes from its text fixture',
    (name) => {
      const encoded = execFileSync(
        'protoc',
        [
          `--proto_path=${protoDir}`,
          '--encode=running_process.broker.v1.ServiceDefinition',
          'running_process_servicedef.proto',
        ],
        { input: readFileSync(join(fixtures, `${name}.txtpb`)) },
      );
      expect(new Uint8Array(encoded)).toEqual(golden(name));
    },
  );

  it('decodes every field of demo-echo.servicedef', () => {
    const def = decodeServicedef(golden('demo-echo'));
    expect(def).toEqual({
      serviceName: 'demo-echo',
      binaryPath: '/opt/rp/bin/1.2.0/echo',
      isolation: 1,
      explicitInstance: '',
      perVersionBinaryDir: '/opt/rp/bin',
      minVersion: '1.0.0',
      versionAllowList: ['1.1.0', '1.2.0'],
      labels: new Map([
        ['team', 'infra'],
        ['tier', '2'],
      ]),
    });
  });

  it('maps demo-echo to our definition: the highest allowed version is the one served', () => {
    const file = '/cfg/demo-echo.servicedef';
    const ours = servicedefToDefinition(decodeServicedef(golden('demo-echo')), file);
    expect(ours).toMatchObject({
      name: 'demo-echo',
      version: '1.2.0',
      command: '/opt/rp/bin/1.2.0/echo',
      args: [],
      minVersion: '1.0.0',
      allowVersions: ['1.1.0', '1.2.0'],
      handoff: true,
      source: file,
    });
  });

  it('refuses the proto3 default isolation (PRIVATE_BROKER), naming the field', () => {
    const def = decodeServicedef(golden('private-default'));
    expect(def.isolation).toBe(0);
    const error = thrown(() => servicedefToDefinition(def, '/cfg/private-default.servicedef'));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.field).toBe('isolation');
    expect(error.message).toContain('PRIVATE_BROKER');
  });

  it('refuses EXPLICIT_INSTANCE, naming the field', () => {
    const def = decodeServicedef(golden('explicit-instance'));
    expect(def.explicitInstance).toBe('blue');
    const error = thrown(() => servicedefToDefinition(def, '/cfg/explicit-instance.servicedef'));
    expect([error.code, error.field]).toEqual(['UNSUPPORTED', 'isolation']);
    expect(error.message).toContain('EXPLICIT_INSTANCE');
  });
});

describe('servicedef mapping refusals', () => {
  const file = '/cfg/svc.servicedef';
  it.each([
    ['a name differing from the file', { serviceName: 'other' }, 'INVALID', 'service_name'],
    ['no name', { serviceName: '' }, 'INVALID', 'service_name'],
    ['an unknown isolation', { isolation: 7 }, 'INVALID', 'isolation'],
    [
      'explicit_instance with SHARED_BROKER',
      { explicitInstance: 'x' },
      'UNSUPPORTED',
      'explicit_instance',
    ],
    ['no binary', { binaryPath: '' }, 'INVALID', 'binary_path'],
    ['a relative binary', { binaryPath: 'bin/svc' }, 'INVALID', 'binary_path'],
    [
      'a binary outside per_version_binary_dir',
      { perVersionBinaryDir: '/opt/rp/bin/2', binaryPath: '/opt/rp/bin/1/svc' },
      'UNSUPPORTED',
      'binary_path',
    ],
    [
      'a binary escaping per_version_binary_dir by ..',
      { perVersionBinaryDir: '/opt/rp', binaryPath: '/opt/rp/../etc/svc' },
      'UNSUPPORTED',
      'binary_path',
    ],
    [
      'a relative per_version_binary_dir',
      { perVersionBinaryDir: 'opt' },
      'INVALID',
      'per_version_binary_dir',
    ],
    ['no version at all', { minVersion: '' }, 'UNSUPPORTED', 'min_version'],
    ['a min_version that is not a release', { minVersion: '1.0' }, 'INVALID', 'min_version'],
    [
      'an allow-list entry that is not a version',
      { versionAllowList: ['1.0.0', 'latest'] },
      'INVALID',
      'version_allow_list[1]',
    ],
    ['a service name our protocol refuses', { serviceName: 'a b' }, 'INVALID', 'service_name'],
  ] as const)('refuses %s', (_, fields, code, field) => {
    const def = rp(fields);
    // The file is named for the service, except where the mismatch is the point.
    const at = def.serviceName === 'a b' ? '/cfg/a b.servicedef' : file;
    const error = thrown(() => servicedefToDefinition(def, at));
    expect([error.code, error.field]).toEqual([code, field]);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
  });

  it('takes a binary inside per_version_binary_dir, and min_version alone as the version', () => {
    const ours = servicedefToDefinition(
      rp({
        perVersionBinaryDir: '/opt/rp/bin',
        binaryPath: '/opt/rp/bin/3.1.0/svc',
        minVersion: '3.1.0',
      }),
      file,
    );
    expect([ours.version, ours.minVersion, ours.allowVersions]).toEqual([
      '3.1.0',
      '3.1.0',
      undefined,
    ]);
  });

  it('serves the highest allow-list version whatever the order', () => {
    const ours = servicedefToDefinition(
      rp({ minVersion: '', versionAllowList: ['1.10.0', '1.9.0', '1.2.0-rc.1'] }),
      file,
    );
    expect(ours.version).toBe('1.10.0');
  });
});

/** A protobuf tag byte (field < 16). */
const tag = (field: number, wire: number) => (field << 3) | wire;

describe('servicedef decoder on bad bytes', () => {
  it.each([
    ['a truncated string', [tag(1, 2), 5, 0x61], 'MALFORMED', 'service_name'],
    ['a varint past the end', [tag(3, 0), 0x80], 'MALFORMED', 'isolation'],
    ['a varint over 10 bytes', [tag(3, 0), ...Array(10).fill(0xff), 1], 'MALFORMED', 'isolation'],
    ['a string field as a varint', [tag(2, 0), 1], 'MALFORMED', 'binary_path'],
    ['a group', [tag(9, 3)], 'MALFORMED', 'field 9'],
    ['field number 0', [0x02, 0], 'MALFORMED', '<tag>'],
    ['invalid UTF-8', [tag(6, 2), 2, 0xc3, 0x28], 'MALFORMED', 'min_version'],
    ['a fixed64 past the end', [tag(12, 1), 1, 2], 'MALFORMED', 'field 12'],
    ['a label key as a varint', [tag(8, 2), 2, tag(1, 0), 1], 'MALFORMED', 'labels.key'],
  ] as const)('refuses %s', (_, bytes, code, field) => {
    const error = thrown(() => decodeServicedef(Uint8Array.from(bytes)));
    expect([error.code, error.field]).toEqual([code, field]);
  });

  it('refuses a string over 4096 bytes before decoding it', () => {
    const long = new Uint8Array(3 + 5000);
    long.set([tag(2, 2), 0x88, 0x27]); // length 5000
    const error = thrown(() => decodeServicedef(long));
    expect([error.code, error.field]).toEqual(['TOO_LARGE', 'binary_path']);
  });

  it('refuses a length far past the end without allocating it', () => {
    const error = thrown(() =>
      decodeServicedef(Uint8Array.from([tag(2, 2), 0xff, 0xff, 0xff, 0xff, 0x0f])),
    );
    expect(error.code).toBe('MALFORMED');
    expect(error.message).toContain('runs past the end');
  });

  it('refuses a file over the cap unread, and more allow-list entries than the cap', () => {
    expect(thrown(() => decodeServicedef(new Uint8Array(MAX_SERVICEDEF_BYTES + 1))).code).toBe(
      'TOO_LARGE',
    );
    const entry = [tag(7, 2), 5, ...Buffer.from('1.0.0')];
    const many = Uint8Array.from(
      Array.from({ length: MAX_SERVICEDEF_LIST + 1 }, () => entry).flat(),
    );
    const error = thrown(() => decodeServicedef(many));
    expect([error.code, error.field]).toEqual(['TOO_LARGE', 'version_allow_list']);
  });

  it('skips unknown fields and lets the last of a repeated scalar win, as protobuf does', () => {
    const bytes = Uint8Array.from([
      ...golden('demo-echo'),
      tag(15, 0),
      0x96,
      0x01, // unknown varint
      tag(14, 5),
      1,
      2,
      3,
      4, // unknown fixed32
      tag(13, 2),
      1,
      0x00, // unknown bytes
      tag(1, 2),
      3,
      ...Buffer.from('two'),
      tag(3, 0),
      2,
    ]);
    const def = decodeServicedef(bytes);
    expect([def.serviceName, def.isolation, def.binaryPath]).toEqual([
      'two',
      2,
      '/opt/rp/bin/1.2.0/echo',
    ]);
  });

  it('reads a negative enum (10-byte varint) as its int32 value', () => {
    const minusOne = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    expect(decodeServicedef(Uint8Array.from([tag(3, 0), ...minusOne])).isolation).toBe(-1);
  });
});
