import { StitchError, type ErrorCode } from '../core/errors.ts';
import { S3AuthError } from './auth/errors.ts';

// An S3 error as the wire carries it: code, HTTP status, message, and extra XML elements.
export class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, string>;
  constructor(code: string, status: number, message: string, details: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

const FROM_STITCH: Record<ErrorCode, [string, number]> = {
  NoSuchBucket: ['NoSuchBucket', 404],
  BucketAlreadyExists: ['BucketAlreadyOwnedByYou', 409],
  BucketNotEmpty: ['BucketNotEmpty', 409],
  InvalidBucketName: ['InvalidBucketName', 400],
  InvalidKey: ['InvalidArgument', 400],
  KeyTooLong: ['KeyTooLongError', 400],
  NoSuchKey: ['NoSuchKey', 404],
  NoSuchVersion: ['NoSuchVersion', 404],
  InvalidVersionId: ['InvalidArgument', 400],
  InvalidRange: ['InvalidRange', 416],
  NoSuchUpload: ['NoSuchUpload', 404],
  InvalidPart: ['InvalidPart', 400],
  InvalidPartOrder: ['InvalidPartOrder', 400],
  EntityTooSmall: ['EntityTooSmall', 400],
  // Data this segment cannot produce right now: a server fault, never wrong bytes.
  ChunkUnavailable: ['InternalError', 500],
  BadDigest: ['BadDigest', 400],
  SegmentLocked: ['ServiceUnavailable', 503],
  NoSuchSegment: ['InternalError', 500],
  InvalidArgument: ['InvalidArgument', 400],
  PreconditionFailed: ['PreconditionFailed', 412],
};

export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof S3AuthError) return new S3Error(err.code, err.status, err.message, { ...err.details });
  if (err instanceof StitchError) {
    const [code, status] = FROM_STITCH[err.code];
    return new S3Error(code, status, err.message);
  }
  return new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.');
}

export const notImplemented = (what: string) =>
  new S3Error('NotImplemented', 501, `${what} is not implemented by stitchfs`);
export const malformedXml = () =>
  new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.');
