// One error type for every layer, with a stable code that each front-end maps to its own protocol
// (S3 XML error, errno on FUSE, exit code on the CLI).
export type ErrorCode =
  | 'NoSuchBucket'
  | 'BucketAlreadyExists'
  | 'BucketNotEmpty'
  | 'InvalidBucketName'
  | 'InvalidKey'
  | 'KeyTooLong'
  | 'NoSuchKey'
  | 'NoSuchVersion'
  | 'InvalidVersionId'
  | 'InvalidRange'
  | 'NoSuchUpload'
  | 'InvalidPart'
  | 'InvalidPartOrder'
  | 'EntityTooSmall'
  | 'ChunkUnavailable'
  | 'BadDigest'
  | 'SegmentLocked'
  | 'NoSuchSegment'
  | 'InvalidArgument'
  | 'PreconditionFailed';

export class StitchError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'StitchError';
    this.code = code;
  }
}

export function isStitchError(err: unknown, code?: ErrorCode): err is StitchError {
  return err instanceof StitchError && (code === undefined || err.code === code);
}
