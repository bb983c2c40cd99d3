// The record of every write the torture workloads attempted: what was sent (key, sha256, size,
// the ETag S3 must give it), where, in what order, and whether it was ACKNOWLEDGED (the server
// answered success, with a version id). After a fault, acknowledged writes must all be there,
// byte for byte; writes in flight at the fault may have landed or not, but nothing else may.

export type OpKind = 'put' | 'mpu' | 'del';

export interface Op {
  id: number;
  // Which segment the request went to.
  segment: string;
  bucket: string;
  key: string;
  kind: OpKind;
  size?: number;
  sha256?: string;
  // The ETag S3 must answer: md5 of the body, or the multipart form.
  etag?: string;
  startedAt: number;
  endedAt?: number;
  state: 'pending' | 'acked' | 'failed';
  versionId?: string;
  error?: string;
  // For ops not acknowledged, once a check has looked: did it land anyway?
  resolved?: 'committed' | 'absent';
  // The server incarnation (crash cycle) it ran against.
  epoch: number;
  // Removed for good on purpose afterwards (DELETE ?versionId): no longer expected to exist.
  purged?: boolean;
}

export class Ledger {
  readonly ops: Op[] = [];
  private readonly byKey = new Map<string, Op[]>();
  private nextId = 1;
  epoch = 0;

  begin(o: Omit<Op, 'id' | 'startedAt' | 'state' | 'epoch'>): Op {
    const op: Op = { ...o, id: this.nextId++, startedAt: Date.now(), state: 'pending', epoch: this.epoch };
    this.ops.push(op);
    const k = keyOf(op.bucket, op.key);
    let list = this.byKey.get(k);
    if (!list) this.byKey.set(k, (list = []));
    list.push(op);
    return op;
  }

  ack(op: Op, versionId: string): void {
    op.state = 'acked';
    op.versionId = versionId;
    op.endedAt = Date.now();
  }

  fail(op: Op, err: unknown): void {
    op.state = 'failed';
    op.error = err instanceof Error ? err.message : String(err);
    op.endedAt = Date.now();
  }

  opsOf(bucket: string, key: string): Op[] {
    return this.byKey.get(keyOf(bucket, key)) ?? [];
  }

  keys(bucket: string): string[] {
    const out: string[] = [];
    for (const [k, ops] of this.byKey) if (ops[0].bucket === bucket) out.push(k.slice(bucket.length + 1));
    return out;
  }

  acked(): Op[] {
    return this.ops.filter((o) => o.state === 'acked');
  }

  // Version ids known to exist: acknowledged, or found committed after a fault.
  knownVersions(): Map<string, Op> {
    const out = new Map<string, Op>();
    for (const o of this.ops) if (o.versionId && (o.state === 'acked' || o.resolved === 'committed')) out.set(o.versionId, o);
    return out;
  }

  // Not acknowledged and not yet looked at after a fault.
  unresolved(bucket: string, key: string): Op[] {
    return this.opsOf(bucket, key).filter((o) => o.state !== 'acked' && o.resolved === undefined);
  }

  counts(): { attempted: number; acked: number; failed: number; committedInDoubt: number; absentInDoubt: number } {
    let acked = 0;
    let failed = 0;
    let committedInDoubt = 0;
    let absentInDoubt = 0;
    for (const o of this.ops) {
      if (o.state === 'acked') acked++;
      else {
        failed++;
        if (o.resolved === 'committed') committedInDoubt++;
        if (o.resolved === 'absent') absentInDoubt++;
      }
    }
    return { attempted: this.ops.length, acked, failed, committedInDoubt, absentInDoubt };
  }
}

const keyOf = (bucket: string, key: string) => `${bucket}\u0000${key}`;
