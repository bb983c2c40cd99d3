// Chunks that writes in progress rely on but have not committed yet. GC skips them; it checks and
// deletes synchronously, so a put that registered a chunk here before looking it up can never see
// "present" and then lose it. Counted, because two puts may hold the same chunk.
export class ChunkGuard {
  private readonly held = new Map<string, number>();

  hold(cid: string): void {
    this.held.set(cid, (this.held.get(cid) ?? 0) + 1);
  }

  release(cids: Iterable<string>): void {
    for (const cid of cids) {
      const n = (this.held.get(cid) ?? 0) - 1;
      if (n <= 0) this.held.delete(cid);
      else this.held.set(cid, n);
    }
  }

  isHeld(cid: string): boolean {
    return this.held.has(cid);
  }
}
