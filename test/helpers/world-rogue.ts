// Misbehaving peers for the gateway's security tests, run inside the test process as bare libp2p
// nodes (TCP, Noise, yamux, the gateway's own frame format): one that asks a segment for chunks,
// and one that answers chunk requests with bytes that do not match their CID.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { CHUNK_PROTOCOL } from '../../src/isgw/chunk-fetch.ts';
import { libp2pKey } from '../../src/isgw/keys.ts';
import { framed, isRecord, readFrame, writeFrame } from '../../src/isgw/wire.ts';
import { loadOrCreateIdentity } from '../../src/segment/identity.ts';

// The libp2p key of a segment's data dir (its identity.pem), to impersonate nothing: only a
// segment the test configured but never started.
export function keyOfDataDir(dataDir: string): PrivateKey {
  return libp2pKey(loadOrCreateIdentity(dataDir).privateKey);
}

export function freshKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519');
}

export async function bareNode(privateKey: PrivateKey, listen: string[] = []): Promise<Libp2p> {
  return createLibp2p({
    privateKey,
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
}

// Asks `target` for chunks the way a segment does. Resolves to what came back per CID, or throws
// when the connection or the stream is refused.
export async function askChunks(node: Libp2p, target: string, cids: string[]): Promise<Record<string, 'bytes' | 'missing'>> {
  const stream = await node.dialProtocol(multiaddr(target), CHUNK_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
  const s = framed(stream);
  await writeFrame(s, { cids, hops: 0 });
  const out: Record<string, 'bytes' | 'missing'> = {};
  for (let i = 0; i < cids.length; i++) {
    const f = await readFrame<{ cid?: string; bytes?: Uint8Array }>(s, AbortSignal.timeout(10_000));
    if (!isRecord(f) || typeof f.cid !== 'string') throw new Error('malformed reply');
    out[f.cid] = f.bytes instanceof Uint8Array ? 'bytes' : 'missing';
  }
  await stream.close();
  return out;
}

// A node that serves every chunk asked of it with random bytes (the wrong ones, of course), and
// counts what it was asked.
export async function liarNode(privateKey: PrivateKey, listen: string): Promise<{ node: Libp2p; asked: () => number; stop: () => Promise<void> }> {
  const node = await bareNode(privateKey, [listen]);
  let asked = 0;
  await node.handle(CHUNK_PROTOCOL, async (stream) => {
    const s = framed(stream);
    try {
      const req = await readFrame<{ cids?: unknown }>(s);
      const cids = isRecord(req) && Array.isArray(req.cids) ? req.cids : [];
      for (const cid of cids) {
        asked++;
        await writeFrame(s, { cid, bytes: randomBytes(256 * 1024) });
      }
      await stream.close();
    } catch (err) {
      stream.abort(err as Error);
    }
  });
  return { node, asked: () => asked, stop: async () => { await node.stop(); } };
}
