import { createHash } from 'node:crypto';
import { type Checksum, type ChecksumAlgorithm, checksumAlgorithmOfHeader, createChecksum, isValidChecksumValue } from './checksums.ts';
import { S3AuthError } from './errors.ts';
import { EMPTY_SHA256, hmacHex, sha256Hex, signaturesEqual } from './sigv4.ts';

// Decoder for `Content-Encoding: aws-chunked` request bodies (SigV4 streaming uploads):
//
//   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//   [<trailer name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
//
// Nothing from the body is trusted: every chunk signature is chained from the request's seed
// signature and checked, the trailer is signed or checksummed, and the decoded length must be the
// declared one. Any violation throws S3AuthError and the caller must discard what it received.

export type StreamingMode = 'streaming-signed' | 'streaming-signed-trailer' | 'streaming-unsigned-trailer';

// What the chunk signatures chain from: the fields of a verified SigV4Auth.
export interface ChunkSigning {
  signingKey: Buffer;
  seedSignature: string;
  scope: string;
  amzDate: string;
}

export interface AwsChunkedOptions {
  mode: StreamingMode;
  // The x-amz-decoded-content-length header: the payload's size without framing.
  decodedContentLength: number;
  // The x-amz-trailer header, naming the checksum the trailer will carry.
  trailer?: string | undefined;
  // Required in the two signed modes.
  signing?: ChunkSigning | undefined;
  // A signed chunk is held until its signature checks, so this bounds memory per upload.
  // Unsigned chunks stream through unheld and are bounded only by the declared length.
  maxChunkSize?: number;
  // Chunk-size lines and trailer lines, extensions included.
  maxLineLength?: number;
}

export const DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_MAX_LINE_LENGTH = 4096;
const MAX_TRAILER_LINES = 16;
const TRAILER_SIGNATURE = 'x-amz-trailer-signature';
const SIGNATURE_HEX = /^[0-9a-f]{64}$/;

// The decoded payload, yielded as it is verified; the trailer results are valid once iteration has
// completed without throwing.
export interface AwsChunkedBody extends AsyncIterable<Uint8Array> {
  readonly decodedLength: number;
  readonly trailers: ReadonlyMap<string, string>;
  // The trailer checksum, already compared with the payload.
  readonly checksum: { algorithm: ChecksumAlgorithm; value: string } | undefined;
}

export function decodeAwsChunked(body: AsyncIterable<Uint8Array>, options: AwsChunkedOptions): AwsChunkedBody {
  const { mode, decodedContentLength: declared } = options;
  const signed = mode !== 'streaming-unsigned-trailer';
  const signing = options.signing;
  if (signed && signing === undefined) throw new TypeError(`decodeAwsChunked: mode ${mode} needs the request's signing context`);
  if (!Number.isSafeInteger(declared) || declared < 0) {
    throw new S3AuthError('InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer');
  }
  const maxChunkSize = options.maxChunkSize ?? DEFAULT_MAX_CHUNK_SIZE;
  const maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const declaredTrailers = parseTrailerHeader(options.trailer);
  if (mode === 'streaming-signed' && declaredTrailers.length > 0) {
    throw new S3AuthError('InvalidRequest', 'x-amz-trailer requires a STREAMING-...-TRAILER x-amz-content-sha256');
  }
  const checksumAlg = declaredTrailers.length > 0 ? checksumAlgorithmOfHeader(declaredTrailers[0]!) : undefined;
  const checksum: Checksum | undefined = checksumAlg === undefined ? undefined : createChecksum(checksumAlg);

  let decoded = 0;
  const trailers = new Map<string, string>();
  let verifiedChecksum: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  let started = false;

  async function* run(): AsyncGenerator<Uint8Array> {
    // On any error the source is left where it stopped, not destroyed: for an http.IncomingMessage
    // that would kill the socket before the server could send the S3 error. The server answers and
    // closes the connection (or drains) as it sees fit.
    const r = new Reader(body);
    let prev = signing?.seedSignature ?? '';
    for (;;) {
      const line = await r.line(maxLine);
      if (line === undefined) throw incomplete('the body ended before the final zero-length chunk');
      const { size, signature } = parseChunkLine(line);
      if (signed && signature === undefined) throw mismatch('a chunk has no chunk-signature');
      if (size > declared - decoded) {
        throw new S3AuthError('InvalidRequest', `the chunks carry more than the ${declared} bytes declared in x-amz-decoded-content-length`);
      }
      if (signed && size > maxChunkSize) {
        throw new S3AuthError('InvalidRequest', `a chunk of ${size} bytes exceeds this gateway's limit of ${maxChunkSize}`);
      }
      if (size === 0) {
        if (signed) prev = checkChunk(signing!, prev, EMPTY_SHA256, signature!);
        break;
      }
      if (signed) {
        // Held (by reference, not copied) until the signature over the whole chunk checks, so
        // no unverified byte is ever handed on.
        const hash = createHash('sha256');
        const held: Buffer[] = [];
        for (let left = size; left > 0; ) {
          if (!(await r.more())) throw incomplete('the body ended inside a chunk');
          const piece = r.take(left);
          hash.update(piece);
          held.push(piece);
          left -= piece.length;
        }
        await r.crlf();
        prev = checkChunk(signing!, prev, hash.digest('hex'), signature!);
        decoded += size;
        for (const piece of held) {
          checksum?.update(piece);
          yield piece;
        }
      } else {
        for (let left = size; left > 0; ) {
          if (!(await r.more())) throw incomplete('the body ended inside a chunk');
          const piece = r.take(left);
          left -= piece.length;
          decoded += piece.length;
          checksum?.update(piece);
          yield piece;
        }
        await r.crlf();
      }
    }
    if (decoded !== declared) {
      throw incomplete(`the chunks carry ${decoded} bytes but x-amz-decoded-content-length is ${declared}`);
    }

    if (mode === 'streaming-signed') {
      const end = await r.line(maxLine);
      if (end === undefined) throw incomplete('the body ended after the final chunk, before its CRLF');
      if (end !== '') throw new S3AuthError('InvalidRequest', 'trailers are not allowed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    } else {
      await readTrailers(r, prev);
    }
    if (await r.more()) throw new S3AuthError('InvalidRequest', 'there are bytes after the end of the aws-chunked body');
    if (checksum !== undefined) {
      const claimed = trailers.get(declaredTrailers[0]!)!;
      const actual = await checksum.digest();
      if (actual !== claimed) {
        throw new S3AuthError('BadDigest', `The ${checksum.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
      }
      verifiedChecksum = { algorithm: checksum.algorithm, value: actual };
    }
  }

  async function readTrailers(r: Reader, prev: string): Promise<void> {
    const canonical: string[] = [];
    let trailerSignature: string | undefined;
    for (let n = 0; ; n++) {
      const line = await r.line(maxLine);
      if (line === undefined) {
        // The AWS SDK for JavaScript ends an unsigned body with just '0\r\n' when it sends no
        // checksum; nothing is lost by accepting that when no trailer was promised.
        if (n === 0 && mode === 'streaming-unsigned-trailer' && declaredTrailers.length === 0) return;
        throw incomplete('the body ended inside the trailer');
      }
      if (line === '') break;
      if (trailerSignature !== undefined) throw new S3AuthError('InvalidRequest', `${TRAILER_SIGNATURE} must be the last trailer`);
      if (n >= MAX_TRAILER_LINES) throw new S3AuthError('InvalidRequest', 'too many trailers');
      const colon = line.indexOf(':');
      if (colon <= 0) throw new S3AuthError('InvalidRequest', 'a trailer line is not name:value');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === TRAILER_SIGNATURE && mode === 'streaming-signed-trailer') {
        trailerSignature = value;
        continue;
      }
      if (!declaredTrailers.includes(name)) {
        throw new S3AuthError('InvalidRequest', `the trailer '${name}' was not declared in x-amz-trailer`);
      }
      if (trailers.has(name)) throw new S3AuthError('InvalidRequest', `the trailer '${name}' is repeated`);
      trailers.set(name, value);
      canonical.push(`${name}:${value}\n`);
    }
    if (mode === 'streaming-signed-trailer') {
      if (trailerSignature === undefined) throw mismatch(`the trailer has no ${TRAILER_SIGNATURE}`);
      const s = signing!;
      const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${prev}\n${sha256Hex(canonical.join(''))}`;
      if (!signaturesEqual(hmacHex(s.signingKey, stringToSign), trailerSignature)) {
        throw mismatch('the trailer signature does not match');
      }
    }
    for (const name of declaredTrailers) {
      const value = trailers.get(name);
      if (value === undefined) throw new S3AuthError('InvalidRequest', `the trailer '${name}' declared in x-amz-trailer is missing`);
      if (!isValidChecksumValue(checksumAlgorithmOfHeader(name)!, value)) {
        throw new S3AuthError('InvalidRequest', `Value for ${name} trailing header is invalid.`);
      }
    }
  }

  return {
    [Symbol.asyncIterator]() {
      if (started) throw new Error('an aws-chunked body can be read only once');
      started = true;
      return run();
    },
    get decodedLength() {
      return decoded;
    },
    get trailers() {
      return trailers;
    },
    get checksum() {
      return verifiedChecksum;
    },
  };
}

// x-amz-trailer: which checksum trailer will follow. S3 takes one; anything but a known
// x-amz-checksum-* is refused rather than passed through unchecked.
function parseTrailerHeader(value: string | undefined): string[] {
  if (value === undefined) return [];
  const names = value
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n.length > 0);
  for (const name of names) {
    if (checksumAlgorithmOfHeader(name) === undefined) {
      throw new S3AuthError('InvalidRequest', `The value specified in the x-amz-trailer header is not supported: ${name}`);
    }
  }
  if (names.length > 1) throw new S3AuthError('InvalidRequest', 'Expecting a single x-amz-checksum- trailer');
  return names;
}

function parseChunkLine(line: string): { size: number; signature: string | undefined } {
  const parts = line.split(';');
  const sizeText = parts[0]!;
  // 13 hex digits is past any size we could accept and still exact as a JS number.
  if (!/^[0-9a-fA-F]{1,13}$/.test(sizeText)) throw new S3AuthError('InvalidRequest', 'malformed aws-chunked chunk size');
  let signature: string | undefined;
  for (const ext of parts.slice(1)) {
    const eq = ext.indexOf('=');
    const name = (eq < 0 ? ext : ext.slice(0, eq)).trim();
    if (name !== 'chunk-signature') continue;
    if (signature !== undefined) throw new S3AuthError('InvalidRequest', 'chunk-signature is repeated');
    signature = ext.slice(eq + 1).trim();
  }
  return { size: parseInt(sizeText, 16), signature };
}

// Each chunk's signature covers its hash and the previous signature, so chunks cannot be dropped,
// reordered or spliced in from another upload, and the final empty chunk proves the end.
function checkChunk(s: ChunkSigning, prev: string, chunkSha256: string, signature: string): string {
  const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${prev}\n${EMPTY_SHA256}\n${chunkSha256}`;
  if (!SIGNATURE_HEX.test(signature) || !signaturesEqual(hmacHex(s.signingKey, stringToSign), signature)) {
    throw mismatch('a chunk signature does not match');
  }
  return signature;
}

function incomplete(why: string): S3AuthError {
  return new S3AuthError('IncompleteBody', `You did not provide the number of bytes specified: ${why}`);
}

function mismatch(why: string): S3AuthError {
  return new S3AuthError('SignatureDoesNotMatch', `The request signature we calculated does not match the signature you provided: ${why}`);
}

const EMPTY = Buffer.alloc(0);

// Pull-based view of the raw body. Data is handed out as subarrays of the input pieces (no
// copies; so a source must not reuse a buffer it has yielded, which node streams never do); only
// framing lines, bounded by maxLine, are ever concatenated.
class Reader {
  private readonly it: AsyncIterator<Uint8Array>;
  private cur: Buffer = EMPTY;
  private pos = 0;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  // True when at least one unread byte is available; false at the end of the body.
  async more(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      if (this.ended) return false;
      const next = await this.it.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const v = next.value;
      this.cur = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      this.pos = 0;
    }
    return true;
  }

  // Up to n bytes of the current piece; call after more() returned true.
  take(n: number): Buffer {
    const end = Math.min(this.cur.length, this.pos + n);
    const out = this.cur.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  // One CRLF-terminated line without the CRLF, or undefined when the body ends where a line
  // would start. A body ending mid-line is truncated; a bare LF is malformed.
  async line(maxLine: number): Promise<string | undefined> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      if (!(await this.more())) {
        if (length === 0) return undefined;
        throw incomplete('the body ended inside a chunk header or trailer line');
      }
      const lf = this.cur.indexOf(0x0a, this.pos);
      const end = lf < 0 ? this.cur.length : lf;
      length += end - this.pos;
      if (length > maxLine + 1) throw new S3AuthError('InvalidRequest', `an aws-chunked header or trailer line is longer than ${maxLine} bytes`);
      parts.push(this.cur.subarray(this.pos, end));
      if (lf < 0) {
        this.pos = this.cur.length;
        continue;
      }
      this.pos = lf + 1;
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
      if (bytes.length === 0 || bytes[bytes.length - 1] !== 0x0d) {
        throw new S3AuthError('InvalidRequest', 'an aws-chunked line does not end with CRLF');
      }
      return bytes.toString('latin1', 0, bytes.length - 1);
    }
  }

  // The CRLF that closes a chunk's data.
  async crlf(): Promise<void> {
    for (const expected of [0x0d, 0x0a]) {
      if (!(await this.more())) throw incomplete('the body ended before the CRLF after a chunk');
      if (this.cur[this.pos++] !== expected) throw new S3AuthError('InvalidRequest', 'a chunk is not followed by CRLF: its size does not match its data');
    }
  }
}
