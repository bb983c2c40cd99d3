import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

// MD5 (the S3 ETag) is the largest CPU cost of ingest: ~700 MB/s on one core, against ~1.6 GB/s
// for sha256 and ~4 GB/s for the chunker. Large bodies hash it on a worker thread so the other
// core chunks and hashes chunks in parallel. Small bodies stay inline: a worker round trip costs
// more than hashing a few hundred KiB, and small-object PUT rate matters.
const INLINE_BYTES = 1024 * 1024;
// Bytes sent to the worker but not hashed yet; past this the writer waits, so a slow worker
// cannot make a put buffer without bound.
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
// Bytes gathered before one message to the worker: a postMessage costs ~120 us, so one per
// socket read (64 KiB) was 2 s of a 1 GiB upload's main-thread time.
const MESSAGE_BYTES = 1024 * 1024;

type Reply = { id: number; op: 'ack'; bytes: number } | { id: number; op: 'digest'; md5: Uint8Array };

class Md5Thread {
  private readonly worker: Worker;
  private readonly streams = new Map<number, WorkerMd5>();
  private nextId = 1;
  private active = 0;

  constructor() {
    this.worker = new Worker(new URL('./md5-thread.ts', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (r: Reply) => this.streams.get(r.id)?.onReply(r));
  }

  open(): WorkerMd5 {
    const id = this.nextId++;
    const s = new WorkerMd5(id, this.worker, () => {
      this.streams.delete(id);
      if (--this.active === 0) this.worker.unref();
    });
    this.streams.set(id, s);
    if (this.active++ === 0) this.worker.ref();
    return s;
  }
}

let shared: Md5Thread | undefined;

class WorkerMd5 {
  private pending = 0;
  private stage = new Uint8Array(MESSAGE_BYTES);
  private staged = 0;
  private drained: (() => void) | undefined;
  private result: ((md5: Buffer) => void) | undefined;
  private readonly id: number;
  private readonly worker: Worker;
  private readonly done: () => void;

  constructor(id: number, worker: Worker, done: () => void) {
    this.id = id;
    this.worker = worker;
    this.done = done;
  }

  // Bytes are copied into a staging buffer that is transferred (not cloned) when full: the one
  // copy the hand-over needs, and far fewer messages.
  async update(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, MESSAGE_BYTES - this.staged);
      this.stage.set(bytes.subarray(at, at + n), this.staged);
      this.staged += n;
      at += n;
      if (this.staged === MESSAGE_BYTES) this.post();
    }
    if (this.pending > MAX_PENDING_BYTES) await new Promise<void>((r) => (this.drained = r));
  }

  private post(): void {
    if (this.staged === 0) return;
    const data = this.stage.subarray(0, this.staged);
    this.pending += data.byteLength;
    this.worker.postMessage({ id: this.id, op: 'update', data }, [data.buffer]);
    this.stage = new Uint8Array(MESSAGE_BYTES);
    this.staged = 0;
  }

  digest(): Promise<Buffer> {
    this.post();
    return new Promise((resolve) => {
      this.result = resolve;
      this.worker.postMessage({ id: this.id, op: 'digest' });
    });
  }

  drop(): void {
    this.worker.postMessage({ id: this.id, op: 'drop' });
    this.done();
  }

  onReply(r: Reply): void {
    if (r.op === 'ack') {
      this.pending -= r.bytes;
      if (this.drained && this.pending <= MAX_PENDING_BYTES / 2) {
        this.drained();
        this.drained = undefined;
      }
    } else {
      this.done();
      this.result?.(Buffer.from(r.md5));
    }
  }
}

// MD5 of a stream fed in order: inline until INLINE_BYTES have been seen, then on the worker.
export class StreamMd5 {
  private inline: Hash | undefined = createHash('md5');
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private remote: WorkerMd5 | undefined;

  async update(bytes: Uint8Array): Promise<void> {
    if (this.remote) return this.remote.update(bytes);
    this.held.push(bytes);
    this.heldBytes += bytes.byteLength;
    if (this.heldBytes < INLINE_BYTES) return;
    this.remote = (shared ??= new Md5Thread()).open();
    this.inline = undefined;
    const held = this.held;
    this.held = [];
    for (const b of held) await this.remote.update(b);
  }

  async digest(): Promise<Buffer> {
    if (this.remote) return this.remote.digest();
    for (const b of this.held) this.inline!.update(b);
    return this.inline!.digest();
  }

  // Abandons the hash (failed put) so the worker frees its state.
  drop(): void {
    this.remote?.drop();
  }
}
