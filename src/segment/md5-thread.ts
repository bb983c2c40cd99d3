import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

// The worker side of md5-offload.ts: one running MD5 per stream id.
type Msg = { id: number; op: 'update'; data: Uint8Array } | { id: number; op: 'digest' } | { id: number; op: 'drop' };

const hashes = new Map<number, Hash>();
parentPort!.on('message', (m: Msg) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('md5')));
    h.update(m.data);
    parentPort!.postMessage({ id: m.id, op: 'ack', bytes: m.data.byteLength });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('md5');
    hashes.delete(m.id);
    parentPort!.postMessage({ id: m.id, op: 'digest', md5: h.digest() });
  } else {
    hashes.delete(m.id);
  }
});
