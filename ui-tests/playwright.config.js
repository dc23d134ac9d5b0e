// @ts-check
const { defineConfig } = require('@playwright/test');

const port = process.env.JRA_UI_TEST_PORT || '8899';
const token = process.env.JRA_UI_TEST_TOKEN || 'research-agent-ui-test';
process.env.JRA_UI_TEST_PORT = port;
process.env.JRA_UI_TEST_TOKEN = token;

module.exports = defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 60 * 1000,
  expect: { timeout: 15 * 1000 },
  fullyParallel: false,
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jupyter lab --config jupyter_server_test_config.py',
    url: `http://127.0.0.1:${port}/api`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe'
  }
});
