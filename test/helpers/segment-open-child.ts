// Opens a segment in a separate process, for lock tests:
//   node segment-open-child.ts <dataDir> <write|read> [hold]
// Prints one JSON line: {"ok":true,"pid":N} or {"ok":false,"code":"..."}. With `hold`, keeps the
// segment open until stdin ends, then closes it and prints {"closed":true}.
import { isStitchError } from '../../src/core/errors.ts';
import { Segment } from '../../src/segment/segment.ts';

const [dataDir, mode, hold] = process.argv.slice(2);
try {
  const seg = await Segment.open({ dataDir, readOnly: mode === 'read' });
  process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid })}\n`);
  if (hold === 'hold') {
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.on('end', resolve));
  }
  await seg.close();
  if (hold === 'hold') process.stdout.write(`${JSON.stringify({ closed: true })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ok: false, code: isStitchError(err) ? err.code : String(err) })}\n`);
  process.exitCode = 1;
}
