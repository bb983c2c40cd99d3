// The gateway answers auth failures in S3's own vocabulary so that SDKs retry, re-sign or give up
// exactly as they would against AWS (e.g. RequestTimeTooSkewed makes several SDKs correct their
// clock offset and retry). The server maps an S3AuthError to an XML <Error> with this code/status.
export type S3AuthErrorCode =
  | 'AccessDenied'
  | 'SignatureDoesNotMatch'
  | 'InvalidAccessKeyId'
  | 'RequestTimeTooSkewed'
  | 'AuthorizationHeaderMalformed'
  | 'AuthorizationQueryParametersError'
  | 'XAmzContentSHA256Mismatch'
  | 'InvalidRequest'
  | 'InvalidArgument'
  | 'InvalidURI'
  | 'MissingContentLength'
  | 'IncompleteBody'
  | 'BadDigest'
  | 'InvalidDigest';

const STATUS: Record<S3AuthErrorCode, number> = {
  AccessDenied: 403,
  SignatureDoesNotMatch: 403,
  InvalidAccessKeyId: 403,
  RequestTimeTooSkewed: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  XAmzContentSHA256Mismatch: 400,
  InvalidRequest: 400,
  InvalidArgument: 400,
  InvalidURI: 400,
  MissingContentLength: 411,
  IncompleteBody: 400,
  BadDigest: 400,
  InvalidDigest: 400,
};

export class S3AuthError extends Error {
  readonly code: S3AuthErrorCode;
  readonly status: number;
  // Extra elements S3 puts in its XML error (StringToSign, CanonicalRequest, ServerTime, ...): they
  // are what lets a client author debug a signature mismatch, and none of them is secret.
  readonly details: Readonly<Record<string, string>>;

  constructor(code: S3AuthErrorCode, message: string, details: Record<string, string> = {}) {
    super(message);
    this.name = 'S3AuthError';
    this.code = code;
    this.status = STATUS[code];
    this.details = details;
  }
}

export function isS3AuthError(err: unknown, code?: S3AuthErrorCode): err is S3AuthError {
  return err instanceof S3AuthError && (code === undefined || err.code === code);
}
