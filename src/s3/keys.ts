import { randomBytes } from 'node:crypto';
import { StitchError } from '../core/errors.ts';
import type { MetaStore } from '../store/meta-store.ts';
import type { CredentialStore } from './auth/credentials.ts';

// S3 access keys of a segment, kept in its metadata store. SigV4 needs the secret itself (it is
// an HMAC key), so it is stored as is, like AWS, MinIO and Garage do; the data dir is the secret.
const PREFIX = 's3key:';

export interface AccessKey {
  id: string;
  secret: string;
  created: number;
}

export class KeyRing implements CredentialStore {
  private readonly meta: MetaStore;
  // A key from the environment (STITCH_ACCESS_KEY_ID/SECRET): accepted, never written to disk.
  private readonly env: AccessKey | undefined;

  constructor(meta: MetaStore, env: NodeJS.ProcessEnv = process.env) {
    this.meta = meta;
    const id = env.STITCH_ACCESS_KEY_ID;
    const secret = env.STITCH_SECRET_ACCESS_KEY;
    this.env = id && secret ? { id, secret, created: 0 } : undefined;
  }

  secretFor(accessKeyId: string): string | undefined {
    if (this.env?.id === accessKeyId) return this.env.secret;
    const v = this.meta.getSetting(PREFIX + accessKeyId);
    return v === undefined ? undefined : (JSON.parse(v) as AccessKey).secret;
  }

  create(): AccessKey {
    // AWS's shapes: a 20-character uppercase id and a 40-character secret.
    const id = `SK${randomBytes(12).toString('base64').replace(/[^A-Z0-9]/gi, '').toUpperCase().padEnd(18, 'X').slice(0, 18)}`;
    const key: AccessKey = { id, secret: randomBytes(30).toString('base64'), created: Date.now() };
    this.meta.setSetting(PREFIX + id, JSON.stringify(key));
    return key;
  }

  list(): AccessKey[] {
    return this.meta.settingsWithPrefix(PREFIX).map((r) => JSON.parse(r.value) as AccessKey);
  }

  remove(id: string): void {
    if (!this.meta.deleteSetting(PREFIX + id)) throw new StitchError('InvalidArgument', `no access key '${id}'`);
  }
}
