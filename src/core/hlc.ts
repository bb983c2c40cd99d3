// Hybrid logical clock packed in one safe integer: wall-clock milliseconds times 1000 plus a
// logical counter. It sorts as a number everywhere (SQL, JSON, CBOR), stays close to real time
// (so `get --at TIME` means something), and never goes backwards on one segment even when the wall
// clock does. 1000 ticks per ms is more than a segment commits; overflow just borrows the next ms.
export const TICKS_PER_MS = 1000;

export type Hlc = number;

// How far ahead of the local wall clock a timestamp seen from another segment may pull this clock.
// Beyond it (a peer's clock years off, or a manifest crafted with a huge timestamp) the version is
// still ordered by its own timestamp, but the local clock does not follow: otherwise every later
// local write would be stamped out there too, and near 2^53 the +1 of a tick is lost to float
// precision, so successive writes tie and an overwrite stops becoming the current version.
export const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;

export class HybridClock {
  private last: Hlc;
  private readonly now: () => number;

  constructor(last: Hlc = 0, now: () => number = Date.now) {
    this.now = now;
    // Restored from the highest stored timestamp, remote ones included: the same bound applies.
    this.last = Math.min(last, this.ceiling());
  }

  private ceiling(): Hlc {
    return (this.now() + MAX_FUTURE_MS) * TICKS_PER_MS;
  }

  // A timestamp for a local event, greater than every one issued or observed before.
  tick(): Hlc {
    this.last = Math.max(this.now() * TICKS_PER_MS, this.last + 1);
    return this.last;
  }

  // Merge a timestamp seen from another segment so later local events order after it.
  observe(remote: Hlc): void {
    if (remote > this.last && remote <= this.ceiling()) this.last = remote;
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
