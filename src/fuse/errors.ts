// Segment errors as errnos: each StitchError code answers the errno a POSIX program expects.
import { isStitchError, type ErrorCode } from '../core/errors.ts';
import { FuseError } from '../native/fuse.ts';

const ERRNO: Partial<Record<ErrorCode, string>> = {
  NoSuchBucket: 'ENOENT',
  NoSuchKey: 'ENOENT',
  NoSuchVersion: 'ENOENT',
  BucketAlreadyExists: 'EEXIST',
  BucketNotEmpty: 'ENOTEMPTY',
  InvalidBucketName: 'EINVAL',
  InvalidKey: 'EINVAL',
  KeyTooLong: 'ENAMETOOLONG',
  InvalidArgument: 'EINVAL',
  InvalidRange: 'EINVAL',
  ChunkUnavailable: 'EIO',
  BadDigest: 'EIO',
  SegmentLocked: 'EROFS',
};

// The error to throw from a FUSE handler: a FuseError for known segment errors, else as is (the
// binding answers errno-coded errors with their errno and anything else with EIO, logged).
export function toFuseError(err: unknown): unknown {
  if (isStitchError(err)) {
    const code = ERRNO[err.code];
    if (code) return new FuseError(code, err.message);
  }
  return err;
}

export function fail(code: string, message?: string): never {
  throw new FuseError(code, message);
}
