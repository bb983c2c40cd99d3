import { createPublicKey, type KeyObject } from 'node:crypto';
import { privateKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';

// The segment's ed25519 key (node:crypto, persisted by the store) as a libp2p key: one identity
// signs version manifests and authenticates Noise sessions, so a peer id names a signer.
export function libp2pKey(privateKey: KeyObject): PrivateKey {
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.d || !jwk.x) throw new Error('segment identity is not an ed25519 key');
  const raw = Buffer.concat([Buffer.from(jwk.d, 'base64url'), Buffer.from(jwk.x, 'base64url')]);
  return privateKeyFromRaw(raw);
}

export function peerIdOf(privateKey: KeyObject): PeerId {
  return peerIdFromPrivateKey(libp2pKey(privateKey));
}

// The verifying key a peer id embeds (ed25519 peer ids carry their public key).
export function publicKeyOfPeer(peerId: string): KeyObject {
  const id = peerIdFromString(peerId);
  if (id.type !== 'Ed25519' || !id.publicKey) throw new Error(`peer id ${peerId} is not an ed25519 key`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(id.publicKey.raw).toString('base64url') }, format: 'jwk' });
}
