import { expect, test } from '@playwright/test';

import {
  callAPI,
  notebookJson,
  openNotebook,
  putNotebook,
  showResearchPanel
} from './helpers';

const HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">';
const HOSTILE_CODE = [
  "print('<img src=x onerror=window.__pwned=2>')",
  'from IPython.display import HTML, display',
  'display(HTML(\'<img src=y onerror="window.__pwned=3"><b>bold</b>\'))'
].join('\n');

interface IExplorationBody {
  id: string;
  status: string;
}

test('model text and side-run output render as inert text', async ({
  page,
  request
}) => {
  // Given an exploration with a proposal whose title, rationale and output carry HTML
  await putNotebook(
    request,
    'inert.ipynb',
    notebookJson([{ id: 'target', source: 'value = 1' }])
  );
  let exp = await callAPI<IExplorationBody>(request, 'POST', 'explorations', {
    notebook_path: 'inert.ipynb',
    cell_id: 'target'
  });
  await expect
    .poll(async () => {
      exp = await callAPI<IExplorationBody>(
        request,
        'GET',
        `explorations/${exp.id}`
      );
      return exp.status;
    })
    .not.toBe('proposing');
  await callAPI(request, 'POST', `explorations/${exp.id}/proposals`, {
    code: HOSTILE_CODE,
    title: HOSTILE_TITLE,
    rationale: '<script>window.__pwned=4</script>'
  });

  // When the notebook and the panel are opened
  await openNotebook(page, 'inert.ipynb');
  const panel = await showResearchPanel(page);

  // Then the title and rationale show as text, and no element was made from them
  const card = panel.getByRole('listitem', { name: HOSTILE_TITLE });
  await expect(card).toBeVisible();
  await expect(card).toContainText(HOSTILE_TITLE);
  await expect(card).toContainText('<script>window.__pwned=4</script>');
  await expect(panel.locator('img, script')).toHaveCount(0);

  // When it is approved and its run's output is shown
  await panel.getByRole('button', { name: `Approve ${HOSTILE_TITLE}` }).click();
  const run = panel.getByRole('listitem', { name: `Run of ${HOSTILE_TITLE}` });
  await expect(run.getByLabel('Run status')).toHaveText('succeeded', {
    timeout: 30 * 1000
  });
  await run.getByRole('button', { name: `Output of ${HOSTILE_TITLE}` }).click();

  // Then the output is plain text (stream text and text/plain only)
  const output = run.getByLabel(`Captured output of ${HOSTILE_TITLE}`);
  await expect(output).toContainText('<img src=x onerror=window.__pwned=2>');
  await expect(output).toContainText('<IPython.core.display.HTML object>');
  await expect(panel.locator('img, script, b')).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
});
