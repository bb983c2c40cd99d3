// A separate process serving a MemFs mount, for tests of what happens when such a process dies
// (SIGKILL leaves a stale mount) or is asked to stop (SIGTERM with handleSignals unmounts).
// Usage: node test/helpers/mount-child.ts <mountpoint>; prints "ready" once mounted.
import { FuseMount } from '../../src/native/fuse.ts';
import { MemFs } from './mount-memfs.ts';

const mountpoint = process.argv[2];
if (!mountpoint) {
  console.error('usage: mount-child.ts <mountpoint>');
  process.exit(2);
}
const fs = new MemFs();
fs.addFile('hello', Buffer.from('hello from the child\n'));
await FuseMount.mount(mountpoint, fs, { handleSignals: true, fsname: 'stitchfs-child' });
process.stdout.write('ready\n');
// The mounted session keeps the event loop alive until a signal unmounts it.
