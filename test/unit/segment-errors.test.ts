import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkCid } from '../../src/core/cid.ts';
import { MAX_KEY_BYTES } from '../../src/core/names.ts';
import type { Segment } from '../../src/segment/segment.ts';
import { expectCode, getBytes, observable, openTempSegment, type TempSegment } from '../helpers/segment-util.ts';

// Bad input gets the right StitchError code and changes nothing (DESIGN.md, Rules).

describe('segment bad input', () => {
  let t: TempSegment;
  let seg: Segment;
  let v1: string;
  let otherKeyVersion: string;
  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('good');
    v1 = (await seg.put('good', 'k', 'content')).versionId;
    otherKeyVersion = (await seg.put('good', 'other', 'other content')).versionId;
    seg.createBucket('other-bucket');
    await seg.put('other-bucket', 'k', 'x');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  // Runs each failing call, checks its code, and that the observable state is unchanged after all.
  async function rejects(cases: [() => unknown, Parameters<typeof expectCode>[1]][]) {
    const before = observable(seg);
    for (const [fn, code] of cases) await expectCode(fn, code);
    expect(observable(seg)).toEqual(before);
  }

  it('unknown bucket: NoSuchBucket everywhere', async () => {
    await rejects([
      [() => seg.put('nope', 'k', 'x'), 'NoSuchBucket'],
      [() => seg.get('nope', 'k'), 'NoSuchBucket'],
      [() => seg.head('nope', 'k'), 'NoSuchBucket'],
      [() => seg.get('nope', 'k', { versionId: v1 }), 'NoSuchBucket'],
      [() => seg.delete('nope', 'k'), 'NoSuchBucket'],
      [() => seg.deleteVersion('nope', 'k', v1), 'NoSuchBucket'],
      [() => seg.list('nope'), 'NoSuchBucket'],
      [() => seg.versions('nope'), 'NoSuchBucket'],
      [() => seg.deleteBucket('nope'), 'NoSuchBucket'],
      [() => seg.updateBucket('nope', { publicRead: true }), 'NoSuchBucket'],
      [() => seg.uploads.create('nope', 'k'), 'NoSuchBucket'],
      [() => seg.uploads.list('nope'), 'NoSuchBucket'],
      [() => seg.bucket('nope'), 'NoSuchBucket'],
    ]);
  });

  it('bad keys: InvalidKey / KeyTooLong on every write and read', async () => {
    const bad: [string, 'InvalidKey' | 'KeyTooLong'][] = [
      ['', 'InvalidKey'], ['..', 'InvalidKey'], ['.', 'InvalidKey'], ['a/../k', 'InvalidKey'], ['a/./k', 'InvalidKey'],
      ['nul\0byte', 'InvalidKey'], ['half\uD83D', 'InvalidKey'], ['k'.repeat(MAX_KEY_BYTES + 1), 'KeyTooLong'],
    ];
    const cases: [() => unknown, 'InvalidKey' | 'KeyTooLong'][] = [];
    for (const [key, code] of bad) {
      cases.push(
        [() => seg.put('good', key, 'x'), code],
        [() => seg.get('good', key), code],
        [() => seg.head('good', key), code],
        [() => seg.delete('good', key), code],
        [() => seg.copy({ bucket: 'good', key: 'k' }, { bucket: 'good', key }), code],
        [() => seg.uploads.create('good', key), code],
      );
    }
    await rejects(cases);
    // The longest valid key works.
    const longest = 'k'.repeat(MAX_KEY_BYTES);
    await seg.put('good', longest, 'long');
    expect((await getBytes(seg, 'good', longest)).toString()).toBe('long');
  });

  it('bad version ids: InvalidVersionId when malformed, NoSuchVersion when unknown or of another key', async () => {
    const unknown = chunkCid(Buffer.from('no such version')).toString();
    const { versionId: otherBucketVersion } = await seg.head('other-bucket', 'k');
    await rejects([
      [() => seg.get('good', 'k', { versionId: 'not-a-version' }), 'InvalidVersionId'],
      [() => seg.get('good', 'k', { versionId: '' }), 'InvalidVersionId'],
      [() => seg.head('good', 'k', { versionId: 'null' }), 'InvalidVersionId'],
      [() => seg.deleteVersion('good', 'k', 'garbage!'), 'InvalidVersionId'],
      [() => seg.get('good', 'k', { versionId: unknown }), 'NoSuchVersion'],
      [() => seg.deleteVersion('good', 'k', unknown), 'NoSuchVersion'],
      [() => seg.get('good', 'k', { versionId: otherKeyVersion }), 'NoSuchVersion'],
      [() => seg.deleteVersion('good', 'k', otherKeyVersion), 'NoSuchVersion'],
      [() => seg.get('good', 'k', { versionId: otherBucketVersion }), 'NoSuchVersion'],
      [() => seg.deleteVersion('good', 'k', otherBucketVersion), 'NoSuchVersion'],
    ]);
    expect((await getBytes(seg, 'good', 'k', { versionId: v1 })).toString()).toBe('content');
  });

  it('missing keys: NoSuchKey', async () => {
    await rejects([
      [() => seg.get('good', 'missing'), 'NoSuchKey'],
      [() => seg.head('good', 'missing'), 'NoSuchKey'],
      [() => seg.get('good', 'k/'), 'NoSuchKey'],
      [() => seg.get('good', 'K'), 'NoSuchKey'],
    ]);
  });

  it('buckets: invalid names, existing buckets, non-empty buckets', async () => {
    await rejects([
      [() => seg.createBucket('good'), 'BucketAlreadyExists'],
      [() => seg.createBucket('Bad_Name'), 'InvalidBucketName'],
      [() => seg.createBucket('ab'), 'InvalidBucketName'],
      [() => seg.createBucket('10.0.0.1'), 'InvalidBucketName'],
      [() => seg.deleteBucket('good'), 'BucketNotEmpty'],
    ]);

    // Non-empty also means: only old versions, only a delete marker, or only an upload in progress.
    seg.createBucket('markers');
    const v = await seg.put('markers', 'a', 'x');
    await seg.delete('markers', 'a');
    expect(seg.list('markers').items).toEqual([]);
    await rejects([[() => seg.deleteBucket('markers'), 'BucketNotEmpty']]);
    seg.deleteVersion('markers', 'a', v.versionId);
    await rejects([[() => seg.deleteBucket('markers'), 'BucketNotEmpty']]);

    seg.createBucket('uploading');
    const up = seg.uploads.create('uploading', 'big');
    await rejects([[() => seg.deleteBucket('uploading'), 'BucketNotEmpty']]);
    seg.uploads.abort('uploading', 'big', up.uploadId);
    seg.deleteBucket('uploading');
    expect(seg.listBuckets().map((b) => b.name)).not.toContain('uploading');
    await rejects([[() => seg.deleteBucket('uploading'), 'NoSuchBucket']]);

    // An emptied bucket can be deleted and created again.
    for (const x of seg.versions('markers').items) seg.deleteVersion('markers', x.key, x.versionId);
    seg.deleteBucket('markers');
    seg.createBucket('markers');
    expect(seg.list('markers').items).toEqual([]);
  });

  it('a body shorter or longer than announced is BadDigest and stores nothing', async () => {
    async function* body() {
      yield Buffer.from('12345');
      yield Buffer.from('678');
    }
    await rejects([
      [() => seg.put('good', 'k', body(), { size: 9 }), 'BadDigest'],
      [() => seg.put('good', 'k', 'abc', { size: 2 }), 'BadDigest'],
      [() => seg.put('good', 'k', 'abc', { contentMd5: Buffer.from('0123456789abcdef') }), 'BadDigest'],
    ]);
    expect((await getBytes(seg, 'good', 'k')).toString()).toBe('content');
  });

  it('a body that fails midway stores nothing and leaves the segment usable', async () => {
    const before = observable(seg);
    async function* failing() {
      yield Buffer.alloc(300_000, 1);
      throw new Error('client went away');
    }
    await expect(seg.put('good', 'k', failing())).rejects.toThrow('client went away');
    expect(observable(seg)).toEqual(before);
    await seg.put('good', 'after-failure', 'fine');
    expect((await getBytes(seg, 'good', 'after-failure')).toString()).toBe('fine');
  });
});
