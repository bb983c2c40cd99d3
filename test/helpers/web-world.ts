// Helpers for the web console tests: a two-segment world of real `stitch serve` processes with
// their consoles on ephemeral ports, a signed-in API client, and seeding a segment's data before
// it starts (in-process, through Segment: thousands of keys in seconds, not minutes of S3 PUTs).
import { createHmac, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Segment } from '../../src/segment/segment.ts';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY, World, type LinkSpec } from './world-cluster.ts';

export { ACCESS_KEY_ID, SECRET_ACCESS_KEY };
export const METRICS_TOKEN = 'stitch-web-test-metrics-token-0123456789';

// Every `stitch serve` the world starts inherits these: the console on a free port (the default
// 9001 would be taken by whichever test got there first) and a bearer token for /metrics.
export async function consoleWorld(o: { names: string[]; links: LinkSpec[]; noStart?: string[] }): Promise<World> {
  process.env.STITCH_CONSOLE = '127.0.0.1:0';
  process.env.STITCH_METRICS_TOKEN = METRICS_TOKEN;
  return World.create(o);
}

export async function consoleUrl(world: World, name: string): Promise<string> {
  const st = (await world.status(name)) as unknown as { console?: string };
  if (!st.console) throw new Error(`${name} serves no console`);
  return st.console;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

// A console API client holding one session cookie (or none).
export class ConsoleClient {
  readonly base: string;
  cookie: string | undefined;

  constructor(base: string, cookie?: string) {
    this.base = base;
    this.cookie = cookie;
  }

  static async signIn(base: string, id = ACCESS_KEY_ID, secret = SECRET_ACCESS_KEY): Promise<ConsoleClient> {
    const c = new ConsoleClient(base);
    const r = await c.login(id, secret);
    if (r.status !== 200) throw new Error(`sign-in failed: ${r.status} ${r.text}`);
    return c;
  }

  async login(id: string, secret: string): Promise<Reply> {
    const ch = await this.get('/api/login/challenge');
    const nonce = ch.json.nonce as string;
    const proof = createHmac('sha256', secret).update(`stitch-console-v1\n${id}\n${nonce}`).digest('hex');
    const r = await this.post('/api/login', { accessKeyId: id, nonce, proof });
    const set = r.headers.get('set-cookie');
    if (r.status === 200 && set) this.cookie = set.split(';')[0];
    return r;
  }

  async request(method: string, path: string, o: { body?: string | Uint8Array; headers?: Record<string, string> } = {}): Promise<Reply> {
    const res = await fetch(this.base + path, {
      method,
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...o.headers },
      body: o.body as RequestInit['body'],
      redirect: 'manual',
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.request('GET', path, { headers });
  }

  post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request('POST', path, {
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', 'x-stitch-console': '1', ...headers },
    });
  }
}

// A GET with the path sent exactly as given (fetch would resolve `..` before sending).
export function rawGet(base: string, path: string, cookie?: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers: cookie ? { cookie } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

export const q = (params: Record<string, string | number | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) s.set(k, String(v));
  return s.toString();
};

export interface Seeded {
  bigV1: Buffer;
  bigV2: Buffer;
  dirKeys: number;
}

// Writes the test namespace into a segment that is not running (its serve starts afterwards):
// photos/a/big.bin (two versions of 3 MiB, several chunks), photos/a/small.txt, photos/top.txt,
// photos/gone.txt (deleted: a delete marker on top), a key with markup in its name, and
// photos/dir/ with `dirKeys` tiny objects (a directory to page through).
export async function seed(dataDir: string, name: string, dirKeys: number): Promise<Seeded> {
  const seg = await Segment.open({ dataDir, name });
  try {
    seg.createBucket('photos');
    const bigV1 = randomBytes(3 * 1024 * 1024);
    const bigV2 = Buffer.concat([bigV1.subarray(0, 2 * 1024 * 1024), randomBytes(1024 * 1024)]);
    await seg.put('photos', 'a/big.bin', bigV1);
    await seg.put('photos', 'a/big.bin', bigV2);
    await seg.put('photos', 'a/small.txt', Buffer.from('small object\n'));
    await seg.put('photos', 'top.txt', Buffer.from('top\n'));
    await seg.put('photos', 'gone.txt', Buffer.from('soon deleted\n'));
    await seg.delete('photos', 'gone.txt');
    await seg.put('photos', 'weird/<img src=x onerror="window.__xss=1">.txt', Buffer.from('markup in a name\n'));
    for (let i = 0; i < dirKeys; i += 250) {
      await Promise.all(Array.from({ length: Math.min(250, dirKeys - i) }, (_, j) =>
        seg.put('photos', `dir/f${String(i + j).padStart(6, '0')}`, Buffer.from(`file ${i + j}\n`))));
    }
    return { bigV1, bigV2, dirKeys };
  } finally {
    await seg.close();
  }
}
