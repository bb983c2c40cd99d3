// The victim of test/integration/crash.test.ts: writes to a segment until it is killed.
//   node segment-crash-writer.ts <dataDir> <seed>
// Runs WORKERS concurrent operations (puts of 0..3 MiB, overwrites, deletes), never two on the same
// key at once, and reports each on stdout, synchronously (so a line is out before the next step):
//   B <op> put <key> <sha256> <size>   before a put starts
//   B <op> del <key>                   before a delete starts
//   A <op> <versionId> <hlc>           after it returned (acknowledged)
// The first line is `R <pid>` once the segment is open.
import { createCipheriv, createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { Segment } from '../../src/segment/segment.ts';

const WORKERS = 3;
const KEYS = 30;
const BUCKET = 'crash';

const [dataDir, seedArg] = process.argv.slice(2);
const seed = Number(seedArg);

let state = (seed * 2654435761) % 0x7fffffff || 1;
function rand(n: number): number {
  state = (state * 48271) % 0x7fffffff;
  return state % n;
}

function bytes(contentSeed: string, size: number): Buffer {
  const key = createHash('sha256').update(contentSeed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

// Sizes: inline (<= 4 KiB), one or two chunks, several chunks, up to 3 MiB.
function size(): number {
  const r = rand(100);
  if (r < 30) return rand(4097);
  if (r < 65) return 4097 + rand(256 * 1024);
  if (r < 90) return 256 * 1024 + rand(768 * 1024);
  return 1024 * 1024 + rand(2 * 1024 * 1024 + 1);
}

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

const seg = await Segment.open({ dataDir, name: 'crash' });
if (!seg.listBuckets().some((b) => b.name === BUCKET)) seg.createBucket(BUCKET);
say(`R ${process.pid}`);

const busy = new Set<string>();
let nextOp = 0;

async function worker(): Promise<never> {
  for (;;) {
    let key: string;
    do key = `k/${String(rand(KEYS)).padStart(2, '0')}`;
    while (busy.has(key));
    busy.add(key);
    const op = `${seed}.${nextOp++}`;
    if (rand(100) < 12) {
      say(`B ${op} del ${key}`);
      const v = await seg.delete(BUCKET, key);
      say(`A ${op} ${v.versionId} ${v.hlc}`);
    } else {
      // Some contents recur across keys and rounds (dedup of chunks already stored).
      const shared = rand(100) < 20;
      const n = shared ? [0, 5000, 300_000, 1_500_000][rand(4)] : size();
      const data = bytes(shared ? `shared ${n}` : `op ${op}`, n);
      say(`B ${op} put ${key} ${createHash('sha256').update(data).digest('hex')} ${n}`);
      const v = await seg.put(BUCKET, key, data);
      say(`A ${op} ${v.versionId} ${v.hlc}`);
    }
    busy.delete(key);
  }
}

await Promise.all(Array.from({ length: WORKERS }, () => worker()));
