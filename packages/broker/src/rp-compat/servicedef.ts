// What a running-process ServiceDefinition means to this broker: each RP
// field mapped to our ServiceDefinition (config/definition.ts validates the
// result), and a refusal naming the RP field for what we cannot honour.
// Decoding the bytes is servicedef-wire.ts; finding the files is servicedef-load.ts.
import { realpathSync } from 'node:fs';
import { basename, isAbsolute, relative } from 'node:path';
import {
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceDefinition,
} from '../config/definition.js';
import { compareVersions } from '../version-policy.js';
import { ServicedefError } from './errors.js';
import { RpIsolation, type RpServicedef } from './servicedef-wire.js';

export const SERVICEDEF_SUFFIX = '.servicedef';

/** Our definition's field paths, as the RP field a user wrote. */
const RP_FIELD: Record<string, string> = {
  name: 'service_name',
  command: 'binary_path',
  minVersion: 'min_version',
  allowVersions: 'version_allow_list',
};

function refuse(field: string, message: string): never {
  throw new ServicedefError('UNSUPPORTED', field, message);
}

function invalid(field: string, message: string): never {
  throw new ServicedefError('INVALID', field, message);
}

/** Whether `path` is `root` or inside it (lexically: no `..` way out). */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Maps one decoded `.servicedef` (read from `file`) to our definition:
 * - service_name → name; it must equal the file's name without `.servicedef`.
 * - binary_path → command; an absolute path (RP spawns it as is, no PATH).
 * - isolation must be SHARED_BROKER: PRIVATE_BROKER (the proto3 default)
 *   and EXPLICIT_INSTANCE ask for a broker of their own, which this shared
 *   broker is not; explicit_instance is refused with them.
 * - per_version_binary_dir: the allow-list root; binary_path must lie
 *   under it (symlinks resolved when both exist).
 * - min_version → minVersion, version_allow_list → allowVersions.
 * - Our definitions carry a version and RP's do not: the highest of
 *   version_allow_list, else min_version, is the version it serves;
 *   with neither it is refused (field min_version).
 * - labels: read and not used (nothing in our definition reads them).
 * Throws ServicedefError (UNSUPPORTED, INVALID) naming the RP field.
 */
export function servicedefToDefinition(def: RpServicedef, file: string): ServiceDefinition {
  const fileName = basename(file);
  const expected = fileName.endsWith(SERVICEDEF_SUFFIX)
    ? fileName.slice(0, -SERVICEDEF_SUFFIX.length)
    : fileName;
  if (def.serviceName === '') invalid('service_name', 'is required');
  if (def.serviceName !== expected)
    invalid(
      'service_name',
      `${JSON.stringify(def.serviceName.slice(0, 80))} differs from the file name ${JSON.stringify(fileName.slice(0, 80))}`,
    );
  if (def.isolation === RpIsolation.PRIVATE_BROKER)
    refuse(
      'isolation',
      'PRIVATE_BROKER (also what an unset isolation means) asks for a broker of the service’s own; this is the shared broker: set isolation to SHARED_BROKER',
    );
  if (def.isolation === RpIsolation.EXPLICIT_INSTANCE)
    refuse(
      'isolation',
      'EXPLICIT_INSTANCE asks for a named broker instance, which this broker does not serve: set isolation to SHARED_BROKER',
    );
  if (def.isolation !== RpIsolation.SHARED_BROKER)
    invalid('isolation', `${def.isolation} is not a BrokerIsolation value`);
  if (def.explicitInstance !== '')
    refuse('explicit_instance', 'names an instance, which only EXPLICIT_INSTANCE uses');
  if (def.binaryPath === '') invalid('binary_path', 'is required');
  if (!isAbsolute(def.binaryPath))
    invalid('binary_path', `${JSON.stringify(def.binaryPath.slice(0, 200))} must be absolute`);
  if (def.perVersionBinaryDir !== '') {
    const root = def.perVersionBinaryDir;
    if (!isAbsolute(root))
      invalid('per_version_binary_dir', `${JSON.stringify(root.slice(0, 200))} must be absolute`);
    if (!inside(root, def.binaryPath) || !inside(realOrSelf(root), realOrSelf(def.binaryPath)))
      refuse(
        'binary_path',
        `${JSON.stringify(def.binaryPath.slice(0, 200))} is outside per_version_binary_dir ${JSON.stringify(root.slice(0, 200))}`,
      );
  }
  let version: string;
  let versionField: string;
  const listed = [...def.versionAllowList];
  if (listed.length > 0) {
    // Sorted only once each is known to be a version; parseServiceDefinition names a bad one.
    const valid = listed.every((v) => /^\d+\.\d+\.\d+(?:-[a-z0-9.]+)?$/.test(v));
    version = valid ? listed.sort((a, b) => compareVersions(b, a))[0]! : listed[0]!;
    versionField = 'version_allow_list';
  } else if (def.minVersion !== '') {
    version = def.minVersion;
    versionField = 'min_version';
  } else {
    refuse(
      'min_version',
      'this broker routes by version and a .servicedef has none: set min_version or version_allow_list (the highest listed is served)',
    );
  }
  const ours = {
    name: def.serviceName,
    version,
    command: def.binaryPath,
    ...(def.minVersion === '' ? {} : { minVersion: def.minVersion }),
    ...(def.versionAllowList.length === 0 ? {} : { allowVersions: def.versionAllowList }),
  };
  try {
    return parseServiceDefinition(ours, file);
  } catch (error) {
    if (!(error instanceof ServiceConfigError)) throw error;
    const field = error.field ?? '<file>';
    const top = /^[A-Za-z]+/.exec(field)?.[0] ?? field;
    const rpField =
      field === 'version' ? versionField : (RP_FIELD[top] ?? top) + field.slice(top.length);
    const prefix = `${file}: ${field}: `;
    const message = error.message.startsWith(prefix)
      ? error.message.slice(prefix.length)
      : error.message;
    throw new ServicedefError('INVALID', rpField, message);
  }
}
