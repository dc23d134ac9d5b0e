import { expect, test } from '@playwright/test';

import {
  callAPI,
  cellWith,
  notebookJson,
  openCellMenu,
  openNotebook,
  putNotebook,
  researchPanel
} from './helpers';

const BROKEN = notebookJson([
  {
    id: 'fine',
    source: 'x = 2\nprint(x)',
    execution_count: 1,
    outputs: [{ output_type: 'stream', name: 'stdout', text: '2\n' }]
  },
  {
    id: 'broken',
    source: 'y = x / 0',
    execution_count: 2,
    outputs: [
      {
        output_type: 'error',
        ename: 'ZeroDivisionError',
        evalue: 'division by zero',
        traceback: [
          '\u001b[0;31m---------------------------------------------------------------------------\u001b[0m',
          '\u001b[0;31mZeroDivisionError\u001b[0m                         Traceback (most recent call last)',
          'Cell \u001b[0;32mIn[2], line 1\u001b[0m\n\u001b[0;32m----> 1\u001b[0m y \u001b[38;5;241m=\u001b[39m x \u001b[38;5;241m/\u001b[39m \u001b[38;5;241m0\u001b[39m',
          '\u001b[0;31mZeroDivisionError\u001b[0m: division by zero'
        ]
      }
    ]
  }
]);

test('"Explain and Fix" is offered on an error cell only and shows the cause', async ({
  page,
  request
}) => {
  // Given a notebook whose second cell failed with an error
  await putNotebook(request, 'broken.ipynb', BROKEN);
  const notebook = await openNotebook(page, 'broken.ipynb');

  // When the researcher right-clicks the cell that ran fine
  let menu = await openCellMenu(page, cellWith(notebook, 'print(x)'));
  // Then "Explain and Fix" is there but disabled
  const fixItem = menu.getByRole('menuitem', { name: /Explain and Fix This/ });
  await expect(fixItem).toHaveAttribute('aria-disabled', 'true');
  await page.keyboard.press('Escape');
  await expect(menu).toBeHidden();

  // When the researcher right-clicks the failed cell
  menu = await openCellMenu(page, cellWith(notebook, 'x / 0'));
  const enabled = menu.getByRole('menuitem', {
    name: 'Explain and Fix This ZeroDivisionError'
  });
  // Then the item names the error and is enabled
  await expect(enabled).not.toHaveAttribute('aria-disabled', 'true');
  await enabled.click();

  // Then the panel shows a fix exploration of that cell with the condensed cause
  const panel = researchPanel(page);
  const detail = panel.getByRole('article', { name: 'Exploration of Cell 2' });
  await expect(detail).toBeVisible();
  await expect(
    detail.getByRole('button', { name: 'Go to the explored cell' })
  ).toHaveText('Fix of Cell 2');
  await expect(detail.getByLabel('Exploration status')).toHaveText('ready');
  const cause = detail.getByRole('region', { name: 'Cause of the error' });
  await expect(cause).toContainText('ZeroDivisionError: division by zero');
  // colour codes of the traceback are gone
  await expect(cause).not.toContainText('[0;31m');
  // and, when the engine triaged the error, its likely cause is shown too
  const { explorations } = await callAPI<{
    explorations: { triage?: { likely_cause?: string } | null }[];
  }>(request, 'GET', 'explorations?notebook_path=broken.ipynb');
  const likely = explorations[0]?.triage?.likely_cause;
  if (likely) {
    await expect(cause).toContainText(`Likely cause: ${likely}`);
  }
  await expect(
    panel.getByRole('list', { name: 'Explorations' }).getByRole('button', {
      name: 'Fix of Cell 2: ready'
    })
  ).toBeVisible();
});
