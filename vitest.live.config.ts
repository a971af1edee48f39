import { defineConfig } from 'vitest/config';

/**
 * Live smoke tests against the real services (`npm run test:live`). They need real
 * keys and network access, so they are not part of `npm test`; each file checks
 * its own keys and fails with a clear message when they are missing.
 */
export default defineConfig({
  test: { include: ['test/live/**/*.live.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
});
