import { StitchError, type ErrorCode } from '../core/errors.ts';

// Exit codes a script can branch on; documented in the README.
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3, conflict: 4, data: 5 } as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  InvalidBucketName: EXIT.usage, InvalidKey: EXIT.usage, KeyTooLong: EXIT.usage, InvalidVersionId: EXIT.usage,
  InvalidRange: EXIT.usage, InvalidArgument: EXIT.usage,
  NoSuchBucket: EXIT.notFound, NoSuchKey: EXIT.notFound, NoSuchVersion: EXIT.notFound, NoSuchUpload: EXIT.notFound,
  NoSuchSegment: EXIT.notFound,
  BucketAlreadyExists: EXIT.conflict, BucketNotEmpty: EXIT.conflict, SegmentLocked: EXIT.conflict,
  ChunkUnavailable: EXIT.data, BadDigest: EXIT.data,
};

export function exitCodeFor(err: unknown): number {
  if (err instanceof StitchError) return BY_CODE[err.code] ?? EXIT.failure;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return EXIT.notFound;
  return EXIT.failure;
}
