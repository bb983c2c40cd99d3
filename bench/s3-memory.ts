// Server memory under large transfers: a 5 GiB multipart upload, then 64 concurrent downloads of
// a 100 MiB object (the S3 issue's bound: ~200 MiB RSS). Peer: the same client against nothing
// but its own process (the client's RSS), printed so the server figure can be read against it.
// Run: node_modules/.bin/node bench/s3-memory.ts [--upload-mib 5120] [--downloads 64] [--download-mib 100]
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { measureMemory } from './lib/s3-memory.ts';
import { startStitch } from './lib/stitch-server.ts';

const { values } = parseArgs({ options: {
  'upload-mib': { type: 'string', default: '5120' },
  downloads: { type: 'string', default: '64' },
  'download-mib': { type: 'string', default: '100' },
} });
const server = await startStitch();
try {
  const r = await measureMemory(server, { uploadMiB: Number(values['upload-mib']), downloads: Number(values.downloads), downloadMiB: Number(values['download-mib']) });
  const client = process.memoryUsage().rss / 1048576;
  console.log(`# S3 server memory, ${cpus().length} cores, ${cpus()[0].model}, node ${process.version}`);
  console.log('phase                                              server peak RSS   wall      client RSS');
  console.log(`idle after start                                   ${r.idleRssMiB.toFixed(0).padStart(6)} MiB`);
  console.log(`multipart upload ${String(r.uploadMiB).padStart(5)} MiB (16 MiB parts x 4)      ${r.uploadPeakRssMiB.toFixed(0).padStart(6)} MiB   ${r.uploadSeconds.toFixed(1).padStart(6)} s`);
  console.log(`${String(r.downloads).padStart(3)} concurrent GETs of ${r.downloadMiB} MiB (slow readers)    ${r.downloadPeakRssMiB.toFixed(0).padStart(6)} MiB   ${r.downloadSeconds.toFixed(1).padStart(6)} s   ${client.toFixed(0)} MiB`);
  console.log('goal: server peak under ~200 MiB');
} finally {
  await server.stop();
}
