import { expect, Page } from '@playwright/test';

export const TOKEN = process.env.JRA_UI_TEST_TOKEN || 'research-agent-ui-test';

/** Open JupyterLab and wait until the shell is ready. */
export async function openLab(page: Page): Promise<void> {
  await page.goto(`/lab?token=${TOKEN}`);
  await expect(page.locator('#jupyterlab-splash')).toHaveCount(0, {
    timeout: 30 * 1000
  });
  await expect(page.locator('.jp-LabShell')).toBeVisible();
}

/** Run a command from the command palette by its label. */
export async function runFromPalette(page: Page, label: string): Promise<void> {
  // The shortcut needs focus inside the shell; a corner of the launcher is inert.
  await page
    .locator('.jp-Launcher')
    .first()
    .click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+Shift+C');
  const palette = page.locator('#modal-command-palette');
  const input = palette.locator('.lm-CommandPalette-input');
  await expect(input).toBeVisible();
  await input.fill(label);
  // The list re-renders on every keystroke: wait for the match, then run the active item.
  await expect(
    palette.locator('.lm-CommandPalette-item.lm-mod-active', { hasText: label })
  ).toBeVisible();
  await page.keyboard.press('Enter');
}
