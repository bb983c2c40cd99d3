import cliProgress from 'cli-progress';

// A transfer bar on stderr when a person is watching (stderr is a terminal); silent otherwise, so
// pipes and scripts get clean output.
export function transferBar(total: number | undefined, label: string): { update(bytes: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value_mb}/{total_mb} MiB | {speed} MiB/s | eta {eta}s`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  const mb = (n: number) => (n / 1048576).toFixed(1);
  bar.start(total ?? 0, 0, { value_mb: '0', total_mb: total === undefined ? '?' : mb(total), speed: '0' });
  return {
    update(bytes) {
      const secs = Math.max((Date.now() - start) / 1000, 0.001);
      if (total === undefined) bar.setTotal(bytes);
      bar.update(bytes, { value_mb: mb(bytes), speed: (bytes / 1048576 / secs).toFixed(0) });
    },
    stop() {
      bar.stop();
    },
  };
}
