import { createHash } from 'node:crypto';
import { decodeAwsChunked, type AwsChunkedBody } from './aws-chunked.ts';
import { type Checksum, type ChecksumAlgorithm, checksumAlgorithmOfHeader, createChecksum, isValidChecksumValue } from './checksums.ts';
import { S3AuthError } from './errors.ts';
import type { Headers, QueryPairs, SigV4Auth } from './sigv4.ts';

// One call for the server: the request body as the payload bytes, with every integrity claim the
// request makes checked by the time iteration ends: the signed sha256, the aws-chunked signature
// chain and trailer, x-amz-checksum-*, Content-MD5. Bytes are yielded as they arrive (signed
// aws-chunked ones once their chunk verifies), so the caller must keep an upload provisional until
// the iteration has finished without throwing, and discard it otherwise.

export interface VerifiedBody extends AsyncIterable<Uint8Array> {
  // Payload bytes yielded so far; the object's size once iteration is done.
  readonly length: number;
  // The S3 checksum the client supplied (header or trailer), verified; for the object's metadata.
  readonly checksum: { algorithm: ChecksumAlgorithm; value: string } | undefined;
}

export interface VerifiedBodyOptions {
  // The request's query: presigned URLs carry hoisted x-amz-checksum-* here.
  query?: QueryPairs;
  maxChunkSize?: number;
  maxLineLength?: number;
}

// auth undefined = an anonymous request (public bucket): the body is taken as unsigned, but any
// checksum the client sent is still checked.
export function verifiedBody(
  auth: SigV4Auth | undefined,
  headers: Headers,
  body: AsyncIterable<Uint8Array>,
  options: VerifiedBodyOptions = {},
): VerifiedBody {
  const mode = auth?.payloadMode ?? { kind: 'unsigned' };
  const claimed = headerChecksum(headers, auth?.presigned ? options.query : undefined);
  const md5 = contentMd5(headers);
  let source: AsyncIterable<Uint8Array> = body;
  let chunked: AwsChunkedBody | undefined;
  let expectedSha256: string | undefined;

  if (mode.kind === 'sha256') {
    expectedSha256 = mode.hex;
  } else if (mode.kind !== 'unsigned') {
    const trailer = single(headers['x-amz-trailer']);
    if (trailer !== undefined && claimed !== undefined) {
      throw new S3AuthError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    }
    chunked = decodeAwsChunked(body, {
      mode: mode.kind,
      decodedContentLength: decodedContentLength(headers),
      trailer,
      signing: auth,
      ...(options.maxChunkSize !== undefined && { maxChunkSize: options.maxChunkSize }),
      ...(options.maxLineLength !== undefined && { maxLineLength: options.maxLineLength }),
    });
    source = chunked;
  }

  let length = 0;
  let verified: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  let started = false;

  async function* run(): AsyncGenerator<Uint8Array> {
    const sha = expectedSha256 === undefined ? undefined : createHash('sha256');
    const md5Hash = md5 === undefined ? undefined : createHash('md5');
    const checksum: Checksum | undefined = claimed === undefined ? undefined : createChecksum(claimed.algorithm);
    for await (const piece of source) {
      sha?.update(piece);
      md5Hash?.update(piece);
      checksum?.update(piece);
      length += piece.length;
      yield piece;
    }
    if (sha !== undefined && sha.digest('hex') !== expectedSha256) {
      throw new S3AuthError('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    if (md5Hash !== undefined && md5Hash.digest('base64') !== md5) {
      throw new S3AuthError('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    if (checksum !== undefined && claimed !== undefined) {
      if ((await checksum.digest()) !== claimed.value) {
        throw new S3AuthError('BadDigest', `The ${claimed.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
      }
      verified = claimed;
    } else {
      verified = chunked?.checksum;
    }
  }

  return {
    [Symbol.asyncIterator]() {
      if (started) throw new Error('a request body can be read only once');
      started = true;
      return run();
    },
    get length() {
      return length;
    },
    get checksum() {
      return verified;
    },
  };
}

// At most one x-amz-checksum-<algorithm>, well formed. (x-amz-checksum-type and friends are not
// checksums and are left to the routes.)
function headerChecksum(headers: Headers, query: QueryPairs | undefined): { algorithm: ChecksumAlgorithm; value: string } | undefined {
  const found: Array<{ algorithm: ChecksumAlgorithm; value: string; name: string }> = [];
  for (const [name, value] of Object.entries(headers)) {
    const algorithm = checksumAlgorithmOfHeader(name);
    if (algorithm === undefined) continue;
    const v = single(value);
    if (v !== undefined) found.push({ algorithm, value: v.trim(), name });
  }
  for (const [name, value] of query ?? []) {
    const algorithm = checksumAlgorithmOfHeader(name);
    if (algorithm !== undefined && !found.some((f) => f.algorithm === algorithm && f.value === value)) {
      found.push({ algorithm, value: value.trim(), name: name.toLowerCase() });
    }
  }
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    throw new S3AuthError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  }
  const { algorithm, value, name } = found[0]!;
  if (!isValidChecksumValue(algorithm, value)) throw new S3AuthError('InvalidRequest', `Value for ${name} header is invalid.`);
  return { algorithm, value };
}

function contentMd5(headers: Headers): string | undefined {
  const value = single(headers['content-md5'])?.trim();
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]{22}==$/.test(value) || Buffer.from(value, 'base64').toString('base64') !== value) {
    throw new S3AuthError('InvalidDigest', 'The Content-MD5 you specified is not valid.');
  }
  return value;
}

function decodedContentLength(headers: Headers): number {
  const value = single(headers['x-amz-decoded-content-length'])?.trim();
  if (value === undefined) {
    throw new S3AuthError('MissingContentLength', 'You must provide x-amz-decoded-content-length with an aws-chunked upload.');
  }
  if (!/^\d{1,15}$/.test(value)) throw new S3AuthError('InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer');
  return Number(value);
}

// A repeated integrity header is ambiguous; refuse it rather than pick one.
function single(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (value.length === 1) return value[0];
  throw new S3AuthError('InvalidRequest', 'an integrity header is repeated');
}
