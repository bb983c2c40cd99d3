import type { Command } from 'commander';
import { StitchError } from '../../core/errors.ts';
import { DIRECTIONS, MODES, type Direction, type LinkMode } from '../../isgw/config.ts';
import { peerIdOf } from '../../isgw/keys.ts';
import { loadOrCreateIdentity } from '../../segment/identity.ts';
import { mkdirSync } from 'node:fs';
import { print, type GlobalOptions } from '../open.ts';
import { readConfig, writeConfig } from '../config-file.ts';

type G = () => GlobalOptions & { config?: string };

export function registerLinks(program: Command, g: G): void {
  program.command('id')
    .description("print this segment's name, peer id and gateway address (creating its key if new)")
    .action(() => {
      const cfg = readConfig(g());
      mkdirSync(cfg.data, { recursive: true });
      const id = peerIdOf(loadOrCreateIdentity(cfg.data).privateKey).toString();
      print(g(), { name: cfg.name, peerId: id, p2p: cfg.p2p }, () => `${cfg.name} ${id} ${cfg.p2p}`);
    });

  const peer = program.command('peer').description('segments whose versions this one accepts (the allowlist)');
  peer.command('add')
    .argument('<name>').argument('<peer-id>')
    .description('allow versions signed by this segment, even relayed by others')
    .action((name: string, peerId: string) => {
      const cfg = readConfig(g());
      if (!cfg.peers.some((p) => p.name === name)) cfg.peers.push({ name, peerId });
      writeConfig(g(), cfg);
      print(g(), { added: name }, () => `allowed ${name}`);
    });

  const link = program.command('link').description('links to other segments (edits the configuration file)');
  link.command('add')
    .argument('<name>', 'the peer segment').argument('<multiaddr>', 'its gateway address, e.g. /ip4/10.0.0.2/tcp/9010')
    .requiredOption('--peer-id <id>', "the peer's id (stitch id on that segment)")
    .option('--bucket <name>', "bucket to share, or '*' for all", '*')
    .option('--mode <mode>', `${MODES.join(' | ')}`, 'metadata-only')
    .option('--direction <dir>', `${DIRECTIONS.join(' | ')}`, 'both')
    .description('link to a segment for a bucket (or every bucket)')
    .action((name: string, addr: string, o: { peerId: string; bucket: string; mode: string; direction: string }) => {
      if (!MODES.includes(o.mode as LinkMode)) throw new StitchError('InvalidArgument', `--mode must be one of ${MODES.join(', ')}`);
      if (!DIRECTIONS.includes(o.direction as Direction)) throw new StitchError('InvalidArgument', `--direction must be one of ${DIRECTIONS.join(', ')}`);
      const cfg = readConfig(g());
      let p = cfg.peers.find((x) => x.name === name);
      if (!p) cfg.peers.push((p = { name, peerId: o.peerId }));
      if (p.peerId !== o.peerId) throw new StitchError('InvalidArgument', `peer ${name} is already known with id ${p.peerId}`);
      p.addrs = [...new Set([...(p.addrs ?? []), addr])];
      p.link = { ...(p.link ?? {}), [o.bucket]: { mode: o.mode as LinkMode, direction: o.direction as Direction } };
      writeConfig(g(), cfg);
      print(g(), p, () => `linked ${name} (${o.bucket}: ${o.mode}, ${o.direction})`);
    });
  link.command('ls')
    .description('list links')
    .action(() => {
      const cfg = readConfig(g());
      const rows = cfg.peers.flatMap((p) => Object.entries(p.link ?? {}).map(([bucket, pol]) => ({ peer: p.name, bucket, ...pol, addrs: p.addrs ?? [] })));
      print(g(), rows, () => rows.map((r) => `${r.peer.padEnd(16)} ${r.bucket.padEnd(20)} ${r.mode.padEnd(14)} ${r.direction.padEnd(8)} ${r.addrs.join(',')}`).join('\n'));
    });
  link.command('rm')
    .argument('<name>')
    .option('--bucket <name>', 'only this bucket')
    .description('remove a link (the peer stays on the allowlist)')
    .action((name: string, o: { bucket?: string }) => {
      const cfg = readConfig(g());
      const p = cfg.peers.find((x) => x.name === name);
      if (!p?.link) throw new StitchError('InvalidArgument', `no link to ${name}`);
      if (o.bucket) delete p.link[o.bucket];
      else delete p.link;
      writeConfig(g(), cfg);
      print(g(), { removed: name }, () => `unlinked ${name}${o.bucket ? ` (${o.bucket})` : ''}`);
    });
}
