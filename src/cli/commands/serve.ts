import type { Command } from 'commander';
import { adminCall, fetchStatus, serveAdmin } from '../../isgw/admin.ts';
import { pinVersion, unpinVersion } from '../../isgw/replicator.ts';
import { parseTarget } from '../target.ts';
import { Gateway } from '../../isgw/gateway.ts';
import { peerIdOf } from '../../isgw/keys.ts';
import { Segment } from '../../segment/segment.ts';
import { KeyRing } from '../../s3/keys.ts';
import { S3Server } from '../../s3/server.ts';
import { readConfig } from '../config-file.ts';
import { print, type GlobalOptions } from '../open.ts';
import { parseHostPort } from '../target.ts';

type G = () => GlobalOptions & { config?: string };

export function registerServe(program: Command, g: G): void {
  program.command('serve')
    .option('--name <name>', 'name of a new segment (an existing one keeps its name)')
    .option('--s3 <host:port>', 'S3 gateway address (default from the config, else 127.0.0.1:9000)')
    .option('--s3-domain <domain...>', 'domains for virtual-host-style requests (<bucket>.<domain>)', ['localhost'])
    .option('--p2p <multiaddr>', 'inter-segment gateway address (default from the config, else /ip4/127.0.0.1/tcp/9010)')
    .description('serve the segment: S3 gateway and inter-segment gateway, until interrupted')
    .action(async (o: { name?: string; s3?: string; s3Domain: string[]; p2p?: string }) => {
      const cfg = readConfig(g());
      cfg.s3 = o.s3 ?? cfg.s3;
      cfg.p2p = o.p2p ?? cfg.p2p;
      const segment = await Segment.open({ dataDir: cfg.data, name: o.name ?? cfg.name });
      const closers: Array<() => Promise<unknown>> = [() => segment.close()];
      const close = async () => {
        for (const c of closers.reverse()) await c().catch((err) => console.error('stitch: while stopping:', err));
      };
      try {
        const keys = new KeyRing(segment.meta);
        const { host, port } = parseHostPort(cfg.s3);
        const s3 = await S3Server.start({ segment, credentials: keys, host, port, domains: o.s3Domain });
        closers.push(() => s3.close());
        const gateway = await Gateway.start(segment, { ...cfg, name: segment.name });
        closers.push(() => gateway.stop());
        const started = Date.now();
        const admin = await serveAdmin(cfg.data, () => ({
          segment: segment.name, peerId: peerIdOf(segment.identity.privateKey).toString(), s3: s3.url, p2p: gateway.addresses,
          uptimeSeconds: (Date.now() - started) / 1000, stats: segment.stats(), peers: gateway.peerStatus(),
          counters: gateway.counters, replicationBacklog: gateway.replicationBacklog, reader: segment.reader.counters,
        }), {
          pin: async (a) => ({ fetchedChunks: await pinVersion(segment, (await segment.head(String(a.bucket), String(a.key))).versionId) }),
          unpin: async (a) => ({ freedBytes: await unpinVersion(segment, (await segment.head(String(a.bucket), String(a.key))).versionId) }),
        });
        closers.push(() => new Promise((r) => admin.close(r)));
        const st = segment.stats();
        console.error(`stitch: segment '${segment.name}' in ${cfg.data}: ${st.objects} objects in ${st.buckets} buckets`);
        console.error(`stitch: S3 gateway on ${s3.url}; inter-segment gateway on ${gateway.addresses.join(' ')}`);
        if (keys.list().length === 0 && !process.env.STITCH_ACCESS_KEY_ID) {
          console.error("stitch: no access keys yet: create one with 'stitch key create' or set STITCH_ACCESS_KEY_ID and STITCH_SECRET_ACCESS_KEY");
        }
        // One line on stdout for scripts and tests that wait for readiness.
        console.log(JSON.stringify({ ready: true, s3: s3.url, p2p: gateway.addresses, segment: segment.name, peerId: peerIdOf(segment.identity.privateKey).toString() }));
      } catch (err) {
        await close();
        throw err;
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await close();
      console.error('stitch: stopped');
    });

  for (const [name, what] of [['pin', 'fetch every chunk of an object now, so reads never wait on the WAN'], ['unpin', "drop this segment's copy of an object's remote data (metadata stays; reads fetch again)"]] as const) {
    program.command(name)
      .argument('<target>', 'BUCKET/KEY')
      .description(what)
      .action(async (target: string) => {
        const { bucket, key } = parseTarget(target, true);
        const out = await adminCall(readConfig(g()).data, 'POST', `/${name}`, { bucket, key }).catch((err: Error) => {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
            throw new Error(`${name} needs the running segment ('stitch serve')`);
          }
          throw err;
        });
        print(g(), out, () => `${name} ${bucket}/${key}: ${JSON.stringify(out)}`);
      });
  }

  program.command('status')
    .description('peers, links, lag and transfer counters of the running segment')
    .action(async () => {
      const cfg = readConfig(g());
      const st = (await fetchStatus(cfg.data).catch(() => {
        throw new Error(`no running segment answers in ${cfg.data} (is 'stitch serve' running?)`);
      })) as {
        segment: string; peers: Array<{ name: string; connected: boolean; lastCatchUp?: number; lastCatchUpEntries: number }>;
        counters: Record<string, number>; replicationBacklog: number;
      };
      const now = Date.now();
      print(g(), st, () => [
        `segment ${st.segment}`,
        ...st.peers.map((p) => `  ${p.name.padEnd(16)} ${p.connected ? 'up  ' : 'down'}  lag ${p.lastCatchUp ? ((now - p.lastCatchUp) / 1000).toFixed(1) : '?'} s  pending ${p.lastCatchUpEntries} versions`),
        `  replication backlog ${st.replicationBacklog} versions`,
        ...Object.entries(st.counters).map(([k, v]) => `  ${k.padEnd(20)} ${v}`),
      ].join('\n'));
    });
}
