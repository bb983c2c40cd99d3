import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirSync } from '../store/fs-chunk-store.ts';

export interface Identity {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

// The segment's ed25519 key signs its version manifests and becomes its libp2p peer id, so it is
// created once and must survive restarts: written 0600 by temp + rename + directory fsync.
export function loadOrCreateIdentity(dataDir: string): Identity {
  const path = join(dataDir, 'identity.pem');
  if (existsSync(path)) {
    const privateKey = createPrivateKey(readFileSync(path));
    return { privateKey, publicKey: createPublicKey(privateKey) };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flush: true });
  renameSync(tmp, path);
  fsyncDirSync(dataDir);
  return { privateKey, publicKey };
}
