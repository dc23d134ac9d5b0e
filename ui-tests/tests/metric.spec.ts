import { expect, Locator, test } from '@playwright/test';

import {
  cellWith,
  exampleNotebook,
  openCellMenu,
  callAPI,
  openNotebook,
  putNotebook,
  researchPanel
} from './helpers';

/** The theme's warning colour, as the browser computes it. */
async function warnColor(anywhere: Locator): Promise<string> {
  return anywhere.evaluate(node => {
    const probe = document.createElement('span');
    probe.style.color = 'var(--jp-warn-color0)';
    node.appendChild(probe);
    const color = getComputedStyle(probe).color;
    probe.remove();
    return color;
  });
}

/** The part of an exploration this test reads back from the REST API. */
interface IExplorationIds {
  id: string;
  metric: { name: string } | null;
}

const EVALUATE = 'acc = float(';
const QUIET = 'Quiet accuracy';
const NO_ACC = 'Loss only';

test('name the metric in the panel, propose more, see where each value came from', async ({
  page,
  request
}, testInfo) => {
  // Given the example notebook and variations of its evaluation cell (no metric named)
  await putNotebook(request, 'metric.ipynb', exampleNotebook());
  const notebook = await openNotebook(page, 'metric.ipynb');
  const evaluate = cellWith(notebook, EVALUATE);
  let menu = await openCellMenu(page, evaluate);
  await menu.getByRole('menuitem', { name: /Propose Variations of/ }).click();
  const panel = researchPanel(page);
  const explorations = panel
    .getByRole('list', { name: 'Explorations' })
    .getByRole('listitem');
  await expect(explorations).toHaveCount(1);
  let detail = panel.getByRole('article');
  await expect(
    detail.getByRole('button', { name: 'Propose more' })
  ).toBeVisible();

  // When the researcher names the metric and its direction, then proposes more
  await detail.getByLabel('Metric', { exact: true }).fill('test accuracy');
  await detail
    .getByRole('combobox', { name: 'Metric direction' })
    .selectOption('maximize');
  await detail.getByRole('button', { name: 'Propose more' }).click();

  // Then the new exploration compares that metric, in that direction
  await expect(explorations).toHaveCount(2);
  detail = panel.getByRole('article');
  await expect(detail.getByLabel('Metric', { exact: true })).toHaveValue(
    'test accuracy'
  );
  await expect(
    detail.getByRole('combobox', { name: 'Metric direction' })
  ).toHaveValue('maximize');

  // and binds it to the code that prints it
  await expect(detail.getByLabel('Metric binding')).toHaveText(
    'bound to `acc` (Cell 4)'
  );

  // When one variation keeps `acc` but no longer prints it, another drops `acc`
  const list = await callAPI<{ explorations: IExplorationIds[] }>(
    request,
    'GET',
    'explorations?notebook_path=metric.ipynb'
  );
  const id = list.explorations.find(
    e => e.metric?.name === 'test accuracy'
  )!.id;
  const prefix = 'p_test = 1 / (1 + np.exp(-(X_test @ w)))\n';
  for (const [title, code] of [
    [QUIET, `${prefix}acc = float(((p_test > 0.5) == y_test).mean())`],
    [NO_ACC, `${prefix}print(f"test loss: {float(p_test.mean()):.4f}")`]
  ]) {
    await callAPI(request, 'POST', `explorations/${id}/proposals`, {
      code,
      title
    });
  }

  // Then the card of the one without `acc` warns before approval
  const proposals = detail.getByRole('region', { name: 'Proposals' });
  const noAcc = proposals.getByRole('listitem', { name: NO_ACC });
  await expect(noAcc.getByLabel('Warnings')).toContainText(
    'this variation no longer computes `acc`'
  );
  await expect(noAcc.getByLabel('Warnings')).toHaveCSS(
    'color',
    await warnColor(noAcc)
  );
  await expect(
    proposals.getByRole('listitem', { name: QUIET }).getByLabel('Warnings')
  ).toHaveCount(0);

  // When both are approved and have run
  await panel.getByRole('button', { name: `Approve ${QUIET}` }).click();
  await panel.getByRole('button', { name: `Approve ${NO_ACC}` }).click();
  await expect(detail.getByLabel('Exploration status')).toHaveText('done', {
    timeout: 45 * 1000
  });

  // Then the comparison uses "test accuracy", and marks the value read from `acc`
  const comparison = detail.getByRole('region', { name: 'Comparison' });
  await expect(
    comparison.getByRole('button', { name: 'Sort by test accuracy' })
  ).toBeVisible();
  const table = comparison.getByRole('table');
  await expect(
    table
      .getByRole('row', { name: QUIET })
      .getByLabel('read from `acc` after the run')
  ).toHaveText('b');
  await expect(
    table.getByRole('row', { name: 'baseline' }).getByLabel(/read from/)
  ).toHaveCount(0);
  // and the run without `acc` says why it has no metric, as a warning
  const reason = detail
    .getByRole('region', { name: 'Runs' })
    .getByRole('listitem', { name: `Run of ${NO_ACC}` })
    .getByLabel('Reason');
  await expect(reason).toHaveText(/^no metric: /);
  await expect(reason).toHaveClass(/jp-mod-warn/);

  await comparison.screenshot({
    path: testInfo.outputPath('metric-comparison.png')
  });
  await detail.getByLabel('Metric binding').scrollIntoViewIfNeeded();
  await panel.screenshot({ path: testInfo.outputPath('metric-row.png') });

  // When the researcher asks for variations from the cell menu again
  menu = await openCellMenu(page, evaluate);
  await menu.getByRole('menuitem', { name: /Propose Variations of/ }).click();
  // Then the new exploration reuses the metric chosen in the panel for this notebook
  await expect(explorations).toHaveCount(3);
  await expect(
    panel.getByRole('article').getByLabel('Metric', { exact: true })
  ).toHaveValue('test accuracy');
});
