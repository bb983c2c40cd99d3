import { Segment } from '../segment/segment.ts';

export interface GlobalOptions {
  data: string;
  json?: boolean;
}

// Opens the segment for one command and always closes it (releasing the data lock).
export async function withSegment<T>(g: GlobalOptions, mode: 'read' | 'write', fn: (s: Segment) => Promise<T>): Promise<T> {
  const segment = await Segment.open({ dataDir: g.data, readOnly: mode === 'read' });
  try {
    return await fn(segment);
  } finally {
    await segment.close();
  }
}

export function print(g: GlobalOptions, data: unknown, human: () => string): void {
  process.stdout.write(g.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}
