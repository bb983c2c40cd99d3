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
import { startMount } from './mount.ts';
import { createLogger, flushLogger, parseLevel } from '../../log/index.ts';
import { metrics } from '../../metrics/index.ts';
import { startConsole } from '../../web/index.ts';

type G = () => GlobalOptions & { config?: string };

export function registerServe(program: Command, g: G): void {
  program.command('serve')
    .option('--name <name>', 'name of a new segment (an existing one keeps its name)')
    .option('--s3 <host:port>', 'S3 gateway address (default from the config, else 127.0.0.1:9000)')
    .option('--s3-domain <domain...>', 'domains for virtual-host-style requests (<bucket>.<domain>)', ['localhost'])
    .option('--p2p <multiaddr>', 'inter-segment gateway address (default from the config, else /ip4/127.0.0.1/tcp/9010)')
    .option('--mount <dir>', 'also mount the segment there (FUSE), in this same process')
    .option('--mount-bucket <name>', 'with --mount: mount one bucket as the root instead of every bucket')
    .option('--console <host:port>', 'web console and /metrics address (default $STITCH_CONSOLE, else 127.0.0.1:9001)')
    .option('--no-console', 'do not serve the web console')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default $STITCH_LOG_LEVEL, else info)')
    .description('serve the segment: S3 gateway and inter-segment gateway, until interrupted')
    .action(async (o: {
      name?: string; s3?: string; s3Domain: string[]; p2p?: string; mount?: string; mountBucket?: string;
      console?: string | boolean; logLevel?: string;
    }) => {
      const level = parseLevel(o.logLevel ?? process.env.STITCH_LOG_LEVEL);
      const cfg = readConfig(g());
      cfg.s3 = o.s3 ?? cfg.s3;
      cfg.p2p = o.p2p ?? cfg.p2p;
      const segment = await Segment.open({ dataDir: cfg.data, name: o.name ?? cfg.name });
      // Structured JSON logs on stderr (stdout carries only the ready line).
      const log = createLogger({ level, base: { segment: segment.name } });
      const closers: Array<() => Promise<unknown>> = [() => segment.close()];
      const close = async () => {
        for (const c of closers.reverse()) await c().catch((err) => log.error({ err }, 'while stopping'));
      };
      try {
        const keys = new KeyRing(segment.meta);
        const { host, port } = parseHostPort(cfg.s3);
        // Each S3 request is counted (by operation and status) and logged with its request id.
        const s3obs = metrics.s3Observer({ domains: o.s3Domain, log: log.child({ component: 's3' }) });
        const s3 = await S3Server.start({ segment, credentials: keys, host, port, domains: o.s3Domain, onRequest: s3obs.onRequest });
        s3obs.attach(s3.server);
        closers.push(() => s3.close());
        const gateway = await Gateway.start(segment, { ...cfg, name: segment.name });
        closers.push(() => gateway.stop());
        metrics.attachSegment(segment);
        metrics.attachGateway(gateway);
        metrics.instrumentReader(segment);
        closers.push(async () => metrics.close());
        const peerId = peerIdOf(segment.identity.privateKey).toString();
        const web = await startConsole({
          option: o.console, env: process.env.STITCH_CONSOLE, segment, credentials: keys, metrics, gateway, peers: cfg.peers,
          log: log.child({ component: 'console' }), info: { peerId, s3: s3.url, p2p: gateway.addresses },
          metricsToken: process.env.STITCH_METRICS_TOKEN || undefined,
        });
        if (web) closers.push(() => web.close());
        const started = Date.now();
        const admin = await serveAdmin(cfg.data, () => ({
          segment: segment.name, peerId, s3: s3.url, p2p: gateway.addresses, console: web?.url,
          uptimeSeconds: (Date.now() - started) / 1000, memory: process.memoryUsage(), stats: segment.stats(), peers: gateway.peerStatus(),
          counters: gateway.counters, replicationBacklog: gateway.replicationBacklog, reader: segment.reader.counters,
        }), {
          pin: async (a) => ({ fetchedChunks: await pinVersion(segment, (await segment.head(String(a.bucket), String(a.key))).versionId) }),
          unpin: async (a) => ({ freedBytes: await unpinVersion(segment, (await segment.head(String(a.bucket), String(a.key))).versionId) }),
          // `stitch fsck --repair` beside the running server: only this process holds the lock and
          // the gateway, i.e. a source for damaged chunks.
          fsck: async (a) => segment.scrub({ repair: a.repair === true }),
        });
        closers.push(() => new Promise((r) => admin.close(r)));
        // Unmounted first on the way down (closers run in reverse), committing open files.
        const mount = o.mount ? await startMount(segment, o.mount, { bucket: o.mountBucket }) : undefined;
        if (mount) closers.push(() => mount.unmount());
        const st = segment.stats();
        log.info({ data: cfg.data, objects: st.objects, buckets: st.buckets }, `segment '${segment.name}' in ${cfg.data}: ${st.objects} objects in ${st.buckets} buckets`);
        log.info({ s3: s3.url, p2p: gateway.addresses, console: web?.url }, `S3 gateway on ${s3.url}; inter-segment gateway on ${gateway.addresses.join(' ')}${web ? `; console on ${web.url}` : ''}`);
        if (keys.list().length === 0 && !process.env.STITCH_ACCESS_KEY_ID) {
          log.warn("no access keys yet: create one with 'stitch key create' or set STITCH_ACCESS_KEY_ID and STITCH_SECRET_ACCESS_KEY");
        }
        // One line on stdout for scripts and tests that wait for readiness.
        console.log(JSON.stringify({ ready: true, s3: s3.url, p2p: gateway.addresses, segment: segment.name, peerId, mount: mount?.mountpoint, console: web?.url }));
      } catch (err) {
        await close();
        flushLogger(log);
        throw err;
      }
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await close();
      log.info('stopped');
      flushLogger(log);
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
