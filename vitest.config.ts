import { defineConfig } from 'vitest/config';

// Integration and e2e tests drive one real dockerd / iptables / kube-apiserver: run files one at a time
// so they do not fight over the same daemon and CPU (2 cores here).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
