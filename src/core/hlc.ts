// Hybrid logical clock packed in one safe integer: wall-clock milliseconds times 1000 plus a
// logical counter. It sorts as a number everywhere (SQL, JSON, CBOR), stays close to real time
// (so `get --at TIME` means something), and never goes backwards on one segment even when the wall
// clock does. 1000 ticks per ms is more than a segment commits; overflow just borrows the next ms.
export const TICKS_PER_MS = 1000;

export type Hlc = number;

export class HybridClock {
  private last: Hlc;
  private readonly now: () => number;

  constructor(last: Hlc = 0, now: () => number = Date.now) {
    this.last = last;
    this.now = now;
  }

  // A timestamp for a local event, greater than every one issued or observed before.
  tick(): Hlc {
    this.last = Math.max(this.now() * TICKS_PER_MS, this.last + 1);
    return this.last;
  }

  // Merge a timestamp seen from another segment so later local events order after it.
  observe(remote: Hlc): void {
    if (remote > this.last) this.last = remote;
  }

  current(): Hlc {
    return this.last;
  }
}

export function hlcToMillis(hlc: Hlc): number {
  return Math.floor(hlc / TICKS_PER_MS);
}

export function hlcFromMillis(ms: number): Hlc {
  return ms * TICKS_PER_MS + (TICKS_PER_MS - 1);
}
