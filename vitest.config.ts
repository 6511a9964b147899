import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end suites start real daemons and Erlang nodes; two cores do not gain from more workers.
    maxWorkers: 2,
  },
});
