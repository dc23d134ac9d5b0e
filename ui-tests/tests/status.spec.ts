import { expect, test } from '@playwright/test';
import { readFileSync } from 'fs';
import { join } from 'path';

import { openLab, researchPanel, runFromPalette } from './helpers';

const VERSION: string = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf-8')
).version;

test('the Research panel shows the server status', async ({ page }) => {
  // Given JupyterLab with the extension, and no language model configured
  await openLab(page);

  // When the panel is opened from the command palette
  await runFromPalette(page, 'Open Research Panel');

  // Then the panel shows the server extension's version and the offline banner
  const panel = researchPanel(page);
  await expect(panel).toBeVisible();
  await expect(panel.getByRole('status')).toContainText(`Version ${VERSION}`);
  await expect(panel.getByLabel('Model', { exact: true })).toContainText(
    'Model: not configured — offline proposer in use'
  );
  // and, with no notebook open, says how to start
  await expect(panel).toContainText('Open a notebook');
});

test('the sidebar tab opens the Research panel', async ({ page }) => {
  // Given JupyterLab with the extension
  await openLab(page);

  // When the Research tab of the left sidebar is clicked
  await page.locator('.jp-SideBar li[data-id="research-agent-panel"]').click();

  // Then the panel is shown with the status
  const panel = researchPanel(page);
  await expect(panel.getByRole('status')).toContainText(`Version ${VERSION}`);
});

test('a missing server extension is a clear banner, and Retry recovers', async ({
  page
}) => {
  // Given a server that does not answer the extension's routes (as without the extension)
  await page.route('**/api/research-agent/**', route =>
    route.fulfill({ status: 404, body: '' })
  );
  await openLab(page);

  // When the panel is opened
  await page.locator('.jp-SideBar li[data-id="research-agent-panel"]').click();

  // Then a banner says what is wrong and how to fix it
  const panel = researchPanel(page);
  const alert = panel.getByRole('alert');
  await expect(alert).toContainText(
    'The server extension jupyter_research_agent is not installed or not enabled'
  );

  // When the extension answers again and the researcher clicks Retry
  await page.unroute('**/api/research-agent/**');
  await alert.getByRole('button', { name: 'Retry' }).click();

  // Then the banner is gone and the status is back
  await expect(panel.getByRole('alert')).toHaveCount(0);
  await expect(panel.getByRole('status')).toContainText(`Version ${VERSION}`);
});
