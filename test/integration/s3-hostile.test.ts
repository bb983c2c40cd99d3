// Hostile input over raw HTTP (node:net sockets and node:http) against a real `stitch serve`
// process: bad keys, malformed XML, truncated bodies, oversized headers, unsupported
// subresources, mass disconnects. Every refusal must be an S3 XML error that changes nothing, and
// the server must keep serving.
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectVersionsCommand, ListPartsCommand,
  PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSocket, rawExchange, rawRequest, requestHead, signRequest } from '../helpers/s3-raw.ts';
import { KiB, MiB, md5hex, randomData, s3client, startS3Server, stopChecked, type S3ServerProcess } from '../helpers/s3-server.ts';

const B = 'hostile';
let server: S3ServerProcess;
let s3: S3Client;
let baseline: string[];

beforeAll(async () => {
  server = await startS3Server();
  s3 = s3client(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: B }));
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'victim.txt', Body: 'original content' }));
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'dir/file.txt', Body: 'nested' }));
  baseline = await allVersions();
});

afterAll(async () => {
  s3?.destroy();
  await stopChecked(server);
});

// Every version (and delete marker) of the bucket: "nothing stored" means this is unchanged.
async function allVersions(): Promise<string[]> {
  const r = await s3.send(new ListObjectVersionsCommand({ Bucket: B }));
  return [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])].map((v) => `${v.Key}@${v.VersionId}`).sort();
}

async function victimIntact(): Promise<void> {
  const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'victim.txt' }));
  expect(await r.Body!.transformToString()).toBe('original content');
}

// A signed request written on a raw socket, `connection: close`, the whole answer returned.
function signedExchange(method: string, path: string, body: Buffer = Buffer.alloc(0), headers: Record<string, string> = {}) {
  const signed = signRequest(method, server.endpoint, path, { ...headers, 'content-length': String(body.length), connection: 'close' }, body);
  return rawExchange(server.endpoint, Buffer.concat([Buffer.from(requestHead(method, path, signed)), body]));
}

function expectXmlError(r: { status: number; text: string; code: string | undefined }, status: number | number[], code?: string | string[]) {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, r.text.slice(0, 400)).toContain(r.status);
  expect(r.text, r.text.slice(0, 400)).toMatch(/content-type: application\/xml/i);
  expect(r.text).toContain('<Error>');
  if (code !== undefined) expect(Array.isArray(code) ? code : [code], r.text.slice(0, 400)).toContain(r.code);
}

describe('bad keys', () => {
  it('refuses keys with . and .. segments, NUL, bad UTF-8 and > 1024 bytes with a 4xx XML error, storing nothing', async () => {
    const keys = [
      'a/../victim.txt', '../victim.txt', 'dir/..', '..', './x', 'a/./b', 'x/%2E%2E/y', '%2e%2e/victim.txt',
      'a%00b', '%00', 'x%00/../y', 'bad%FFutf8', 'bad%C3', 'k'.repeat(1025), encodeURIComponent('é'.repeat(513)),
    ];
    for (const key of keys) {
      const body = Buffer.from('evil');
      const put = await signedExchange('PUT', `/${B}/${key}`, body);
      expectXmlError(put, 400, ['InvalidArgument', 'KeyTooLongError', 'InvalidURI']);
      for (const method of ['GET', 'DELETE']) {
        expectXmlError(await signedExchange(method, `/${B}/${key}`), 400, ['InvalidArgument', 'KeyTooLongError', 'InvalidURI']);
      }
      const head = await signedExchange('HEAD', `/${B}/${key}`);
      expect(head.status, `HEAD ${key}`).toBe(400);
      const mp = await signedExchange('POST', `/${B}/${key}?uploads`);
      expectXmlError(mp, 400);
      const copy = await signedExchange('PUT', `/${B}/${key}`, Buffer.alloc(0), { 'x-amz-copy-source': `/${B}/victim.txt` });
      expectXmlError(copy, 400);
    }
    // As a copy source too.
    const cs = await signedExchange('PUT', `/${B}/copy-target`, Buffer.alloc(0), { 'x-amz-copy-source': `/${B}/dir/../victim.txt` });
    expect(cs.status).toBeGreaterThanOrEqual(400);
    expect(cs.status).toBeLessThan(500);
    // The longest legal key works.
    const longest = 'k'.repeat(1024);
    const ok = await signedExchange('PUT', `/${B}/${longest}`, Buffer.from('fits'));
    expect(ok.status).toBe(200);
    const del = await signedExchange('DELETE', `/${B}/${longest}?versionId=${/x-amz-version-id: (\S+)/.exec(ok.text)![1]}`);
    expect(del.status).toBe(204);

    expect(await allVersions()).toEqual(baseline);
    await victimIntact();
    // Nor did any multipart upload get created.
    const ups = await rawRequest(server.endpoint, 'GET', `/${B}?uploads`, { sign: true });
    expect(ups.text).not.toContain('<Upload>');
  });

  it('refuses undecodable URIs and bad bucket names', async () => {
    expectXmlError(await signedExchange('GET', `/${B}/bad%zzescape`), 400, 'InvalidURI');
    expectXmlError(await signedExchange('GET', `/${B}?prefix=%zz`), 400, 'InvalidURI');
    expectXmlError(await signedExchange('PUT', '/UPPER_case'), 400, 'InvalidBucketName');
    expectXmlError(await signedExchange('PUT', '/..'), 400);
    expectXmlError(await signedExchange('PUT', '/a'), 400, 'InvalidBucketName');
    expectXmlError(await signedExchange('GET', `/${B}?list-type=2&max-keys=-1`), 400, 'InvalidArgument');
    expectXmlError(await signedExchange('GET', `/${B}?encoding-type=base64`), 400, 'InvalidArgument');
    expectXmlError(await signedExchange('PUT', `/${B}/x?partNumber=abc&uploadId=zzz`, Buffer.from('x')), [400, 404]);
  });
});

describe('malformed requests', () => {
  it('answers malformed XML to DeleteObjects and CompleteMultipartUpload with MalformedXML', async () => {
    const bodies = [
      'this is not xml',
      '<Delete><Object><Key>victim.txt</Key></Object>',
      '<Delete></Delete>',
      '<Delete><Object><VersionId>x</VersionId></Object></Delete>',
      '<?xml version="1.0"?><Delete><Object><Key>victim.txt</Key></Object></Delet>',
      '',
      '<<<>>>',
    ];
    for (const body of bodies) {
      const r = await signedExchange('POST', `/${B}?delete`, Buffer.from(body));
      expectXmlError(r, 400, 'MalformedXML');
    }
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp.bin' }));
    const completes = [
      'not xml at all',
      '<CompleteMultipartUpload></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part>',
      '<Other/>',
      '',
    ];
    for (const body of completes) {
      const r = await signedExchange('POST', `/${B}/mp.bin?uploadId=${UploadId}`, Buffer.from(body));
      expectXmlError(r, 400, 'MalformedXML');
    }
    // The upload survives the bad requests.
    const lp = await s3.send(new ListPartsCommand({ Bucket: B, Key: 'mp.bin', UploadId }));
    expect(lp.UploadId).toBe(UploadId);
    // Entity expansion ("billion laughs") is refused or harmless, and quick.
    const lol = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">${Array.from({ length: 8 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join('')}]><Delete><Object><Key>&i;</Key></Object></Delete>`;
    // (In a bucket of its own: if the document is accepted, the key is deleted, i.e. a marker.)
    await s3.send(new CreateBucketCommand({ Bucket: 'hostile-xml' }));
    const t0 = Date.now();
    const r = await signedExchange('POST', '/hostile-xml?delete', Buffer.from(lol));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.status).toBeGreaterThanOrEqual(200);
    expect(r.status).toBeLessThan(500);
    // Whatever key was read, it was not expanded to 10^8 characters.
    expect(r.text.length).toBeLessThan(10_000);
    // An oversized document is refused.
    const huge = Buffer.from(`<Delete>${'<Object><Key>k</Key></Object>'.repeat(60_000)}</Delete>`);
    const big = await signedExchange('POST', `/${B}?delete`, huge);
    expectXmlError(big, 400, ['MaxMessageLengthExceeded', 'MalformedXML']);
    // More than 1000 keys in one DeleteObjects.
    const many = Buffer.from(`<Delete>${Array.from({ length: 1001 }, (_, i) => `<Object><Key>k${i}</Key></Object>`).join('')}</Delete>`);
    expectXmlError(await signedExchange('POST', `/${B}?delete`, many), 400, 'MalformedXML');

    expect(await allVersions()).toEqual(baseline);
    await victimIntact();
  });

  it('answers unsupported subresources with 501 NotImplemented and never treats them as a plain GET/PUT', async () => {
    for (const sub of ['acl', 'tagging', 'lifecycle', 'policy', 'cors', 'website', 'object-lock', 'replication', 'encryption']) {
      for (const [method, path] of [['GET', `/${B}?${sub}`], ['PUT', `/${B}?${sub}`], ['DELETE', `/${B}?${sub}`],
        ['GET', `/${B}/victim.txt?${sub}`], ['PUT', `/${B}/victim.txt?${sub}`], ['DELETE', `/${B}/victim.txt?${sub}`]] as const) {
        const body = method === 'PUT' ? Buffer.from('<Tagging><TagSet/></Tagging>') : Buffer.alloc(0);
        const r = await signedExchange(method, path, body);
        expectXmlError(r, 501, 'NotImplemented');
      }
    }
    // The PUT ?tagging with a body did not overwrite the object; DELETE ?acl did not delete it.
    expect(await allVersions()).toEqual(baseline);
    await victimIntact();
    // Methods that mean nothing here.
    expectXmlError(await signedExchange('PATCH', `/${B}/victim.txt`), [400, 405, 501]);
    expectXmlError(await signedExchange('POST', `/${B}/victim.txt`), [400, 405, 501]);
  });

  it('refuses an oversized header block (> 16 KiB) and keeps serving', async () => {
    const r = await rawExchange(server.endpoint, requestHead('GET', `/${B}/victim.txt`, {
      host: new URL(server.endpoint).host, 'x-amz-meta-big': 'x'.repeat(20 * KiB), connection: 'close',
    }));
    expect([400, 431]).toContain(r.status);
    // Many medium headers adding up past the limit.
    const many: Record<string, string> = { host: new URL(server.endpoint).host, connection: 'close' };
    for (let i = 0; i < 400; i++) many[`x-h-${i}`] = 'y'.repeat(64);
    expect([400, 431]).toContain((await rawExchange(server.endpoint, requestHead('GET', '/', many))).status);
    await victimIntact();
  });

  it('refuses malformed HTTP framing and keeps serving', async () => {
    const host = new URL(server.endpoint).host;
    for (const bytes of [
      'GARBAGE\r\n\r\n',
      `GET /${B} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n`,
      `PUT /${B}/x HTTP/1.1\r\nhost: ${host}\r\ncontent-length: -1\r\nconnection: close\r\n\r\n`,
      `PUT /${B}/x HTTP/1.1\r\nhost: ${host}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\nabc\r\n`,
      `GET /${B}/a b HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`,
    ]) {
      const r = await rawExchange(server.endpoint, bytes, 5_000);
      expect(r.status === 0 || (r.status >= 400 && r.status < 500), JSON.stringify(bytes)).toBe(true);
    }
    // A signed, malformed Authorization header.
    const bad = await rawExchange(server.endpoint, requestHead('GET', `/${B}/victim.txt`, {
      host, authorization: 'AWS4-HMAC-SHA256 Credential=garbage', 'x-amz-date': '20200101T000000Z', connection: 'close',
    }));
    expectXmlError(bad, 400, 'AuthorizationHeaderMalformed');
    expect(await allVersions()).toEqual(baseline);
    await victimIntact();
  });
});

describe('errors while the body is still in flight', () => {
  it('answers an anonymous PUT whose body has not arrived yet with 403, closes the connection, and survives', async () => {
    // The error is sent before the body is read: the server closes the connection rather than
    // drain it. (This once crashed the process: req.socket is null by the time 'finish' fires.)
    for (let i = 0; i < 5; i++) {
      const s = await openSocket(server.endpoint);
      const pieces: Buffer[] = [];
      s.on('data', (d: Buffer) => pieces.push(d));
      s.on('error', () => {});
      const closed = new Promise((res) => s.on('close', res));
      s.write(requestHead('PUT', `/${B}/anon-${i}.bin`, { host: new URL(server.endpoint).host, 'content-length': String(MiB) }));
      await new Promise((res) => setTimeout(res, 100));
      s.write(randomData(64 * KiB), () => {});
      await Promise.race([closed, new Promise((res) => setTimeout(res, 5_000))]);
      s.destroy();
      const text = Buffer.concat(pieces).toString();
      expect(text).toMatch(/^HTTP\/1\.1 403/);
      expect(text).toContain('<Code>AccessDenied</Code>');
      expect(server.alive()).toBe(true);
    }
    // The same with a signed request refused for its key.
    const headers = signRequest('PUT', server.endpoint, `/${B}/a/../b`, { 'content-length': String(MiB) }, undefined, { payloadHash: 'UNSIGNED-PAYLOAD' });
    const s = await openSocket(server.endpoint);
    s.on('error', () => {});
    const pieces: Buffer[] = [];
    s.on('data', (d: Buffer) => pieces.push(d));
    const closed = new Promise((res) => s.on('close', res));
    s.write(requestHead('PUT', `/${B}/a/../b`, headers));
    await Promise.race([closed, new Promise((res) => setTimeout(res, 5_000))]);
    s.destroy();
    expect(Buffer.concat(pieces).toString()).toContain('<Code>InvalidArgument</Code>');
    expect(server.alive()).toBe(true);
    await victimIntact();
    expect(await allVersions()).toEqual(baseline);
  });
});

describe('cut connections', () => {
  async function cutUpload(path: string, declared: number, sent: number, signed: boolean): Promise<void> {
    const full = randomData(declared);
    const headers = signed
      ? signRequest('PUT', server.endpoint, path, { 'content-length': String(declared) }, full)
      : signRequest('PUT', server.endpoint, path, { 'content-length': String(declared) }, undefined, { payloadHash: 'UNSIGNED-PAYLOAD' });
    const s = await openSocket(server.endpoint);
    s.on('error', () => {});
    s.write(requestHead('PUT', path, headers));
    await new Promise<void>((res) => s.write(full.subarray(0, sent), () => res()));
    await new Promise((res) => setTimeout(res, 50));
    s.destroy();
  }

  it('a PUT cut short (1 MiB declared, 100 KiB sent) leaves no object and the server still serves', async () => {
    await cutUpload(`/${B}/truncated.bin`, MiB, 100 * KiB, true);
    await cutUpload(`/${B}/truncated-unsigned.bin`, MiB, 100 * KiB, false);
    // Over an existing object.
    await cutUpload(`/${B}/victim.txt`, 4 * MiB, 3 * MiB, false);
    await new Promise((res) => setTimeout(res, 300));
    expect(await allVersions()).toEqual(baseline);
    await victimIntact();

    // A part cut short is not listed.
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'cut-part.bin' }));
    await cutUpload(`/${B}/cut-part.bin?partNumber=1&uploadId=${UploadId}`, 6 * MiB, 2 * MiB, false);
    await new Promise((res) => setTimeout(res, 300));
    const lp = await s3.send(new ListPartsCommand({ Bucket: B, Key: 'cut-part.bin', UploadId }));
    expect(lp.Parts ?? []).toEqual([]);

    // A body that ends early but cleanly (declared more than sent, then half-close): no object.
    const body = Buffer.from('short');
    const headers = signRequest('PUT', server.endpoint, `/${B}/short.bin`, { 'content-length': '100' }, undefined, { payloadHash: 'UNSIGNED-PAYLOAD' });
    const s = await openSocket(server.endpoint);
    s.on('error', () => {});
    s.end(Buffer.concat([Buffer.from(requestHead('PUT', `/${B}/short.bin`, headers)), body]));
    await new Promise((res) => { s.on('close', res); setTimeout(res, 1_000); });
    s.destroy();
    expect(await allVersions()).toEqual(baseline);

    const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'after-cut.bin', Body: 'still serving' }));
    expect(put.ETag).toBe(`"${md5hex(Buffer.from('still serving'))}"`);
    baseline = await allVersions();
  });

  it('survives 50 concurrent clients disconnecting mid-upload (and mid-header), then serves normally', async () => {
    const host = new URL(server.endpoint).host;
    const clients = Array.from({ length: 50 }, async (_, i) => {
      const s = await openSocket(server.endpoint);
      s.on('error', () => {});
      const path = `/${B}/storm/${i}.bin`;
      if (i % 5 === 4) {
        // Half a request head, then gone.
        s.write(`PUT ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-le`);
      } else {
        const headers = signRequest('PUT', server.endpoint, path, { 'content-length': String(8 * MiB) }, undefined, { payloadHash: 'UNSIGNED-PAYLOAD' });
        s.write(requestHead('PUT', path, headers));
        const piece = randomData(64 * KiB);
        for (let n = 0; n < 4 + (i % 8); n++) {
          await new Promise<void>((res) => s.write(piece, () => res()));
        }
      }
      await new Promise((res) => setTimeout(res, 20 + (i % 10) * 10));
      s.destroy();
    });
    await Promise.all(clients);
    // And readers that hang up mid-download.
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'download-me.bin', Body: randomData(8 * MiB) }));
    await Promise.all(Array.from({ length: 10 }, async () => {
      const s = await openSocket(server.endpoint);
      s.on('error', () => {});
      s.write(requestHead('GET', `/${B}/download-me.bin`, signRequest('GET', server.endpoint, `/${B}/download-me.bin`, {}, undefined)));
      await new Promise((res) => s.once('data', res));
      s.destroy();
    }));
    await new Promise((res) => setTimeout(res, 500));

    const data = randomData(2 * MiB);
    const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'after-storm.bin', Body: data }));
    expect(put.ETag).toBe(`"${md5hex(data)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'after-storm.bin' }));
    expect(createHash('sha256').update(await got.Body!.transformToByteArray()).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    const versions = await allVersions();
    expect(versions.filter((v) => v.startsWith('storm/'))).toEqual([]);
    expect(versions.filter((v) => !v.startsWith('after-storm.bin@') && !v.startsWith('download-me.bin@'))).toEqual(baseline);
    await victimIntact();
  });

  it('is still alive', () => {
    expect(() => process.kill(server.pid, 0)).not.toThrow();
    expect(server.alive()).toBe(true);
    expect(server.stderr()).not.toMatch(/uncaught|unhandled|FATAL/i);
    // No request above ended in a 500 (the server logs each one as "s3: METHOD path failed:").
    expect(server.stderr()).not.toMatch(/^s3: .* failed:/m);
  });
});
