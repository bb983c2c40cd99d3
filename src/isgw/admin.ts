import { createServer, request, type Server } from 'node:http';
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

// A local control socket in the data directory: only users who can read the data can ask the
// running process for its live state (peers, lag, counters), which exists nowhere on disk.
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, 'admin.sock');
}

export type AdminAction = (args: Record<string, unknown>) => Promise<unknown>;

export async function serveAdmin(dataDir: string, status: () => unknown, actions: Record<string, AdminAction> = {}): Promise<Server> {
  const path = adminSocketPath(dataDir);
  if (existsSync(path)) unlinkSync(path);
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/status') return reply(200, status());
    const action = req.method === 'POST' ? actions[(req.url ?? '').slice(1)] : undefined;
    if (!action) return reply(404, { error: 'no such endpoint' });
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      let args: Record<string, unknown>;
      try {
        args = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}');
      } catch {
        return reply(400, { error: 'malformed JSON' });
      }
      action(args).then((out) => reply(200, out), (err: Error & { code?: string }) => reply(400, { error: err.message, code: err.code }));
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

export function fetchStatus(dataDir: string): Promise<unknown> {
  return adminCall(dataDir, 'GET', '/status');
}

// Calls the running segment; an action's failure comes back as an Error with its message.
export function adminCall(dataDir: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: adminSocketPath(dataDir), path, method }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const out = JSON.parse(Buffer.concat(parts).toString('utf8')) as { error?: string };
        if (res.statusCode === 200) resolve(out);
        else reject(new Error(out.error ?? `admin ${path} failed`));
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
