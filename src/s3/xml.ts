import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { S3Error, malformedXml } from './errors.ts';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: false, processEntities: true });

// `<?xml ...?><Root xmlns="...">...</Root>` from a plain object; arrays repeat their element.
export function xmlDocument(root: string, body: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { '@_xmlns': NS, ...body } })}`;
}

export function xmlError(code: string, message: string, extra: Record<string, string>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ Error: { Code: code, Message: message, ...extra } })}`;
}

// Request documents are small; anything larger is refused before parsing.
export const MAX_XML_BYTES = 1024 * 1024;

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  // Numeric references too: rclone sends part ETags as &#34;...&#34; in CompleteMultipartUpload.
  htmlEntities: true,
  isArray: (name) => ['Part', 'Object'].includes(name),
});

export async function readXml(body: AsyncIterable<Uint8Array>): Promise<Record<string, unknown>> {
  const pieces: Buffer[] = [];
  let size = 0;
  for await (const piece of body) {
    size += piece.length;
    if (size > MAX_XML_BYTES) throw new S3Error('MaxMessageLengthExceeded', 400, 'Your request was too big.');
    pieces.push(Buffer.from(piece));
  }
  const text = Buffer.concat(pieces).toString('utf8');
  if (text.trim() === '') throw malformedXml();
  try {
    const doc = parser.parse(text, true);
    if (!doc || typeof doc !== 'object') throw malformedXml();
    return doc as Record<string, unknown>;
  } catch (err) {
    if (err instanceof S3Error) throw err;
    throw malformedXml();
  }
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const quoted = (etag: string) => `"${etag}"`;
