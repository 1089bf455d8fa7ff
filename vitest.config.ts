import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // 2 cores: two files at a time; heavy crash and concurrency files hold their own servers
    maxWorkers: 2,
    fileParallelism: true,
  },
});
