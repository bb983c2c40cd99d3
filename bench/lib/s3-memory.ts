import { Readable } from 'node:stream';
import { createCipheriv } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Agent } from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { TEST_KEY, type StitchServer } from './stitch-server.ts';

export function client(endpoint: string, sockets = 64): S3Client {
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: TEST_KEY.id, secretAccessKey: TEST_KEY.secret },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: sockets }) }),
  });
}

// Incompressible, non-repeating bytes at memory speed (AES-CTR keystream), generated as read.
export function keystream(bytes: number, seed = 1): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16));
  const zero = Buffer.alloc(1024 * 1024);
  let left = bytes;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, zero.length);
      left -= n;
      this.push(cipher.update(zero.subarray(0, n)));
    },
  });
}

export interface MemoryResult {
  uploadMiB: number;
  uploadSeconds: number;
  uploadPeakRssMiB: number;
  downloads: number;
  downloadMiB: number;
  downloadSeconds: number;
  downloadPeakRssMiB: number;
  idleRssMiB: number;
}

// Peak RSS of the server while (1) one multipart upload streams through it and (2) many clients
// download one object at once. The kernel's VmHWM is reset by nothing, so phase 2 reports the
// peak over both: phase 1 runs first and the download figure is only meaningful if it exceeds it.
export async function measureMemory(server: StitchServer, o: { uploadMiB: number; downloads: number; downloadMiB: number }): Promise<MemoryResult> {
  const s3 = client(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: 'mem' }));
  const idleRssMiB = server.rssMiB();
  let t = performance.now();
  await new Upload({
    client: s3, params: { Bucket: 'mem', Key: 'big', Body: keystream(o.uploadMiB * 1048576) },
    partSize: 16 * 1048576, queueSize: 4,
  }).done();
  const uploadSeconds = (performance.now() - t) / 1000;
  const uploadPeakRssMiB = server.peakRssMiB();
  const body = await new Response(Readable.toWeb(keystream(o.downloadMiB * 1048576, 2)) as ReadableStream).arrayBuffer();
  await s3.send(new PutObjectCommand({ Bucket: 'mem', Key: 'shared', Body: Buffer.from(body) }));
  t = performance.now();
  await Promise.all(Array.from({ length: o.downloads }, async () => {
    const r = await s3.send(new GetObjectCommand({ Bucket: 'mem', Key: 'shared' }));
    // A slow consumer: the server must hold back, not buffer the object for it.
    for await (const _ of r.Body as Readable) await new Promise((res) => setImmediate(res));
  }));
  const downloadSeconds = (performance.now() - t) / 1000;
  s3.destroy();
  return {
    uploadMiB: o.uploadMiB, uploadSeconds, uploadPeakRssMiB, downloads: o.downloads, downloadMiB: o.downloadMiB,
    downloadSeconds, downloadPeakRssMiB: server.peakRssMiB(), idleRssMiB,
  };
}
