import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Live smoke tests need real keys and the network: `npm run test:live` only.
    exclude: [...configDefaults.exclude, 'test/live/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The leak and quality suites are CPU-heavy; two cores, so keep forks few.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--expose-gc'] } },
  },
});
