import type { S3Context } from '../context.ts';

// Single-tenant: the segment owns everything. Clients only display this, some require it present.
export function owner(c: S3Context): { ID: string; DisplayName: string } {
  return { ID: c.segment.name, DisplayName: c.segment.name };
}
