import { StitchError } from './errors.ts';

// S3's limits, so a name valid here is valid through every front-end.
export const MAX_KEY_BYTES = 1024;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS = /^\d+\.\d+\.\d+\.\d+$/;

export function checkBucketName(name: string): void {
  if (!BUCKET_NAME.test(name) || name.includes('..') || IP_ADDRESS.test(name)) {
    throw new StitchError(
      'InvalidBucketName',
      `invalid bucket name '${name}': 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit`,
    );
  }
}

// Keys are paths on the FUSE side, so the segments '.' and '..' and NUL are refused everywhere:
// otherwise one object could be reachable under two names, or none.
export function checkKey(key: string): void {
  if (key.length === 0) throw new StitchError('InvalidKey', 'empty key');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new StitchError('KeyTooLong', `key is longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (key.includes('\0')) throw new StitchError('InvalidKey', 'key contains a NUL byte');
  if (!key.isWellFormed()) throw new StitchError('InvalidKey', 'key is not valid UTF-8');
  for (const part of key.split('/')) {
    if (part === '.' || part === '..') throw new StitchError('InvalidKey', `key '${key}' has a '.' or '..' segment`);
  }
}
