// The QA flow in Debian's Chromium (no browser download), at a desktop and a phone size, against
// the real node tests/e2e/test_console.py starts (it passes the node's URL and tokens in SBM_E2E_*).
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './e2e',
  outputDir: process.env.SBM_E2E_OUTPUT ?? 'test-results',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 300_000,
  expect: { timeout: 30_000 },
  reporter: [['list']],
  use: {
    baseURL: process.env.SBM_E2E_URL,
    launchOptions: {
      executablePath: process.env.SBM_E2E_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox'],
    },
    headless: true,
    trace: 'off',
  },
  projects: [
    { name: 'unit', testMatch: /.*\.unit\.ts/ },
    {
      name: 'desktop',
      testMatch: /.*\.e2e\.ts/,
      use: { viewport: { width: 1280, height: 860 } },
    },
    {
      name: 'phone',
      testMatch: /.*\.e2e\.ts/,
      // The seed's mobile interface: a phone held upright, touch, a narrow CSS viewport.
      use: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
    },
  ],
});
