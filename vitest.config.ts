import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests spawn real processes and move hundreds of MiB; the defaults are for unit tests.
    testTimeout: 180_000,
    hookTimeout: 60_000,
    // Two cores: running every file at once makes the heavy ones starve each other.
    maxWorkers: 2,
    pool: 'forks',
  },
});
