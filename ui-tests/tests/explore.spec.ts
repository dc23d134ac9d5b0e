import { expect, Page, test } from '@playwright/test';

import {
  cellWith,
  exampleNotebook,
  openCellMenu,
  openNotebook,
  putNotebook,
  researchPanel
} from './helpers';

const FAST = 'lr: 0.01 → 0.1';
const SLOW = 'lr: 0.01 → 0.001';
const SKIPPED = 'epochs: 30 → 15';
const STATE_REBUILT =
  /^state: (full replay|sliced replay|snapshot \((prepared|live) kernel\)) · rebuild \d+\.\d\d s$/;
const ENGINE_SCHEMA =
  'https://events.jupyter.org/jupyter_research_agent/engine/v1';

// Tall enough for the panel's screenshot to show the comparison and the chart.
test.use({ viewport: { width: 1280, height: 1000 } });

/** Switch JupyterLab's theme from the Settings menu and wait until it applies. */
async function useTheme(page: Page, theme: string): Promise<void> {
  await page.getByRole('menuitem', { name: 'Settings' }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).click();
  await page.getByRole('menu').getByText(theme, { exact: true }).click();
  const light = theme.includes('Light') ? 'true' : 'false';
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    light
  );
}

test('propose, approve two variations, compare and apply the best', async ({
  page,
  request
}, testInfo) => {
  // Engine events reach the browser on the server's event socket (the panel refetches on them)
  const engineEvents: string[] = [];
  page.on('websocket', socket => {
    socket.on('framereceived', frame => {
      const text = String(frame.payload);
      if (text.includes(ENGINE_SCHEMA)) {
        engineEvents.push(text);
      }
    });
  });

  // Given the example notebook (logistic regression with a poor learning rate) open in Lab
  await putNotebook(request, 'explore.ipynb', exampleNotebook());
  const notebook = await openNotebook(page, 'explore.ipynb');
  const training = cellWith(notebook, 'epochs = 30');

  // When the researcher right-clicks the training cell and asks for variations
  const menu = await openCellMenu(page, training);
  await menu.getByRole('menuitem', { name: /Propose Variations of/ }).click();

  // Then the Research panel opens on the new exploration with the offline proposals
  const panel = researchPanel(page);
  await expect(panel).toBeVisible();
  await expect(panel.getByLabel('Model', { exact: true })).toContainText(
    'offline proposer in use'
  );
  const proposals = panel.getByRole('region', { name: 'Proposals' });
  const fast = proposals.getByRole('listitem', { name: FAST });
  await expect(fast).toBeVisible();
  await expect(fast).toContainText('offline');
  // the change is a line diff against the cell: one line out, one line in
  const diff = fast.getByLabel(`Change made by ${FAST}`);
  await expect(diff.locator('.jp-ResearchAgent-diff-del')).toHaveText(
    '− lr = 0.01'
  );
  await expect(diff.locator('.jp-ResearchAgent-diff-add')).toHaveText(
    '+ lr = 0.1'
  );

  // When one proposal is rejected and two are approved
  await panel.getByRole('button', { name: `Reject ${SKIPPED}` }).click();
  await expect(
    proposals.getByRole('listitem', { name: SKIPPED }).getByLabel('Status')
  ).toHaveText('rejected');
  await panel.getByRole('button', { name: `Approve ${FAST}` }).click();
  await panel.getByRole('button', { name: `Approve ${SLOW}` }).click();

  // Then their runs (and the baseline) appear and finish in side kernels
  const runs = panel.getByRole('region', { name: 'Runs' });
  await expect(
    runs.getByRole('listitem', { name: `Run of ${FAST}` })
  ).toBeVisible();
  await expect(panel.getByLabel('Exploration status')).toHaveText('done', {
    timeout: 45 * 1000
  });
  for (const label of ['baseline', FAST, SLOW]) {
    const run = runs.getByRole('listitem', { name: `Run of ${label}` });
    await expect(run.getByLabel('Run status')).toHaveText('succeeded');
    // and says how it rebuilt the state its cell needs
    await expect(run.getByLabel('State rebuild')).toHaveText(STATE_REBUILT);
  }
  expect(engineEvents.length).toBeGreaterThan(0);
  // and the rejected proposal never ran
  await expect(
    runs.getByRole('listitem', { name: `Run of ${SKIPPED}` })
  ).toHaveCount(0);

  // Then the comparison shows the metric per variation, the best highlighted
  const comparison = panel.getByRole('region', { name: 'Comparison' });
  const table = comparison.getByRole('table');
  await expect(
    table.getByRole('columnheader', { name: /test loss/ })
  ).toBeVisible();
  const fastRow = table.getByRole('row', { name: FAST });
  const baselineRow = table.getByRole('row', { name: 'baseline' });
  const fastLoss = Number(await fastRow.getByRole('cell').nth(0).innerText());
  const baselineLoss = Number(
    await baselineRow.getByRole('cell').nth(0).innerText()
  );
  expect(fastLoss).toBeGreaterThan(0);
  expect(fastLoss).toBeLessThan(baselineLoss);
  await expect(fastRow).toHaveClass(/jp-mod-best/);
  await expect(fastRow).toContainText('best');
  await expect(table.getByRole('row', { name: SKIPPED })).toHaveCount(0);
  // and its written reading is shown once (the interpretation, else the summary)
  await expect(comparison.locator('.jp-ResearchAgent-summary')).toHaveCount(1);
  await expect(
    comparison.getByRole('img', { name: /test loss per variation/ })
  ).toBeVisible();

  // When the table is sorted by the metric, descending
  await comparison.getByRole('button', { name: 'Sort by test loss' }).click();
  await comparison.getByRole('button', { name: 'Sort by test loss' }).click();
  // Then the worse variation comes first after the baseline
  const labels = await table.locator('tbody th[scope="row"]').allInnerTexts();
  expect(labels[1]).toContain(SLOW);
  await panel.screenshot({ path: testInfo.outputPath('research-panel.png') });
  await useTheme(page, 'JupyterLab Dark');
  await panel.screenshot({
    path: testInfo.outputPath('research-panel-dark.png')
  });
  await useTheme(page, 'JupyterLab Light');

  // When the best variation replaces the cell
  await comparison
    .getByRole('button', { name: `Replace cell with ${FAST}` })
    .click();

  // Then the training cell holds the new code and nothing ran in the researcher's kernel
  await expect(training.locator('.cm-content')).toContainText('lr = 0.1');
  await expect(training.locator('.cm-content')).not.toContainText('lr = 0.01');
  await expect(training.locator('.jp-InputPrompt')).toHaveText('[ ]:');

  // When the researcher undoes in the cell (Ctrl+Z in its editor: JupyterLab's cell undo)
  await training.locator('.cm-content').click();
  await page.keyboard.press('Control+z');
  // Then the cell's source is back
  await expect(training.locator('.cm-content')).toContainText('lr = 0.01');

  // When the best variation is inserted below the cell instead
  const cells = notebook.locator('.jp-Cell');
  await expect(cells).toHaveCount(4);
  await comparison
    .getByRole('button', { name: `Insert ${FAST} below the cell` })
    .click();
  // Then a new code cell with its code follows the training cell, not run either
  await expect(cells).toHaveCount(5);
  await expect(cells.nth(3).locator('.cm-content')).toContainText('lr = 0.1');
  await expect(cells.nth(3).locator('.jp-InputPrompt')).toHaveText('[ ]:');

  // When the notebook's undo runs (command mode, Z)
  await cells.nth(3).locator('.jp-InputPrompt').click();
  await page.keyboard.press('Escape');
  await page.keyboard.press('z');
  // Then the inserted cell is gone
  await expect(cells).toHaveCount(4);
});
