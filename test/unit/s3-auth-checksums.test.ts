import { createHash, randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { describe, expect, it } from 'vitest';
import {
  CHECKSUM_ALGORITHMS,
  checksumAlgorithmOfHeader,
  checksumHeaderName,
  createChecksum,
  isValidChecksumValue,
  type ChecksumAlgorithm,
} from '../../src/s3/auth/checksums.ts';

async function digest(alg: ChecksumAlgorithm, ...parts: Uint8Array[]): Promise<string> {
  const c = createChecksum(alg);
  for (const p of parts) c.update(p);
  return c.digest();
}

const hexB64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

describe('checksums', () => {
  it('match the standard check values for "123456789"', async () => {
    const check = Buffer.from('123456789');
    expect(await digest('crc32', check)).toBe(hexB64('cbf43926'));
    expect(await digest('crc32c', check)).toBe(hexB64('e3069283'));
    expect(await digest('crc64nvme', check)).toBe(hexB64('ae8b14860a799888'));
    expect(await digest('sha1', Buffer.from('abc'))).toBe(hexB64('a9993e364706816aba3e25717850c26c9cd0d89d'));
    expect(await digest('sha256', Buffer.from('abc'))).toBe(hexB64('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'));
  });

  it("match S3's published values: 66560 bytes of 'a' and the SDK's 'hello'", async () => {
    expect(await digest('crc32c', Buffer.alloc(66560, 'a'))).toBe('sOO8/Q==');
    expect(await digest('crc32', Buffer.from('hello'))).toBe('NhCmhg==');
  });

  it('digest empty input as the algorithms define', async () => {
    expect(await digest('crc32')).toBe('AAAAAA==');
    expect(await digest('crc32c')).toBe('AAAAAA==');
    expect(await digest('crc64nvme')).toBe('AAAAAAAAAAA=');
    expect(await digest('sha256')).toBe(createHash('sha256').digest('base64'));
  });

  it('crc32c agrees with @aws-crypto/crc32c for any length and any split', async () => {
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(i < 20 ? i : Math.floor(Math.random() * 200_000));
      const oracle = new Crc32c().update(data).digest();
      const want = Buffer.from([oracle >>> 24, (oracle >>> 16) & 0xff, (oracle >>> 8) & 0xff, oracle & 0xff]).toString('base64');
      const cut1 = Math.floor(Math.random() * (data.length + 1));
      const cut2 = cut1 + Math.floor(Math.random() * (data.length - cut1 + 1));
      expect(await digest('crc32c', data.subarray(0, cut1), data.subarray(cut1, cut2), data.subarray(cut2))).toBe(want);
    }
  });

  it('every algorithm is incremental: split updates equal one update', async () => {
    const data = randomBytes(300_001);
    for (const alg of CHECKSUM_ALGORITHMS) {
      const whole = await digest(alg, data);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < data.length; at += 1 + (at % 9973)) parts.push(data.subarray(at, at + 1 + (at % 9973)));
      expect([alg, await digest(alg, ...parts)]).toEqual([alg, whole]);
    }
    const z = Buffer.alloc(4);
    z.writeUInt32BE(zlibCrc32(data));
    expect(await digest('crc32', data)).toBe(z.toString('base64'));
  });

  it('map header names to algorithms and back', () => {
    expect(checksumAlgorithmOfHeader('x-amz-checksum-crc32')).toBe('crc32');
    expect(checksumAlgorithmOfHeader('X-Amz-Checksum-CRC64NVME')).toBe('crc64nvme');
    expect(checksumAlgorithmOfHeader('x-amz-checksum-type')).toBeUndefined();
    expect(checksumAlgorithmOfHeader('x-amz-checksum-md5')).toBeUndefined();
    expect(checksumAlgorithmOfHeader('content-md5')).toBeUndefined();
    for (const alg of CHECKSUM_ALGORITHMS) expect(checksumAlgorithmOfHeader(checksumHeaderName(alg))).toBe(alg);
  });

  it('accept only canonical base64 of the right length as a claimed value', async () => {
    for (const alg of CHECKSUM_ALGORITHMS) expect([alg, isValidChecksumValue(alg, await digest(alg, Buffer.from('x')))]).toEqual([alg, true]);
    expect(isValidChecksumValue('crc32', 'y/Q5Jg==')).toBe(true);
    expect(isValidChecksumValue('crc32', 'y/Q5Jh==')).toBe(false); // non-zero padding bits
    expect(isValidChecksumValue('crc32', 'y/Q5Jg=')).toBe(false);
    expect(isValidChecksumValue('crc32', 'y/Q5Jg')).toBe(false);
    expect(isValidChecksumValue('crc32', 'y-Q5Jg==')).toBe(false);
    expect(isValidChecksumValue('crc32c', 'rosUhgp5mIg=')).toBe(false); // a crc64 value
    expect(isValidChecksumValue('sha256', '')).toBe(false);
  });
});
