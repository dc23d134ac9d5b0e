import { expect, test } from '@playwright/test';
import { readFileSync } from 'fs';
import { join } from 'path';

import { openLab, runFromPalette } from './helpers';

const VERSION: string = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf-8')
).version;

test('the Research panel shows the server status', async ({
  page
}, testInfo) => {
  // Given JupyterLab with the extension, and no language model configured
  await openLab(page);

  // When the panel is opened from the command palette
  await runFromPalette(page, 'Open Research Panel');

  // Then the panel shows the server extension's version and the model state
  const panel = page.getByRole('region', { name: 'Research' });
  await expect(panel).toBeVisible();
  const status = panel.getByRole('status');
  await expect(status).toContainText(`Version ${VERSION}`);
  await expect(status).toContainText(
    'Model: not configured — offline proposer in use'
  );
  await page.screenshot({ path: testInfo.outputPath('research-panel.png') });
});

test('the sidebar tab opens the Research panel', async ({ page }) => {
  // Given JupyterLab with the extension
  await openLab(page);

  // When the Research tab of the left sidebar is clicked
  await page.locator('.jp-SideBar li[data-id="research-agent-panel"]').click();

  // Then the panel is shown with the status
  const panel = page.getByRole('region', { name: 'Research' });
  await expect(panel.getByRole('status')).toContainText(`Version ${VERSION}`);
});
