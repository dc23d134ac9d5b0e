import { expect, Locator, Page, test } from '@playwright/test';

import {
  cellWith,
  exampleNotebook,
  openCellMenu,
  openNotebook,
  putNotebook,
  researchPanel
} from './helpers';

// Tall enough for the panel's screenshot to show the autopilot and its lineage.
test.use({ viewport: { width: 1280, height: 1000 } });

/** Open the example notebook and ask for variations of its training cell. */
async function proposeOnTraining(page: Page, path: string): Promise<Locator> {
  const notebook = await openNotebook(page, path);
  const menu = await openCellMenu(page, cellWith(notebook, 'epochs = 30'));
  await menu.getByRole('menuitem', { name: /Propose Variations of/ }).click();
  const panel = researchPanel(page);
  await expect(
    panel.getByRole('region', { name: 'Proposals' }).getByRole('listitem')
  ).not.toHaveCount(0);
  return panel;
}

/** Fill the autopilot's form and start it. */
async function startAutopilot(
  autopilot: Locator,
  rounds: string,
  runs: string
): Promise<void> {
  const form = autopilot.getByRole('form', { name: 'Autopilot settings' });
  // Off by default: the form is shown, parameter and seed changes allowed
  await expect(form.getByRole('checkbox', { name: 'parameter' })).toBeChecked();
  await expect(form.getByRole('checkbox', { name: 'seed' })).toBeChecked();
  await expect(
    form.getByRole('checkbox', { name: 'ablation' })
  ).not.toBeChecked();
  await form.getByRole('spinbutton', { name: 'Rounds' }).fill(rounds);
  await form.getByRole('spinbutton', { name: 'Run budget' }).fill(runs);
  await autopilot.getByRole('button', { name: 'Start autopilot' }).click();
}

test('the autopilot runs rounds within its budget and shows the lineage', async ({
  page,
  request
}, testInfo) => {
  // Given the example notebook with proposals for its training cell
  await putNotebook(request, 'autopilot.ipynb', exampleNotebook());
  const panel = await proposeOnTraining(page, 'autopilot.ipynb');
  const autopilot = panel.getByRole('region', { name: 'Autopilot' });
  await expect(autopilot).toContainText('Off');

  // When the researcher starts the autopilot for two rounds and six runs
  await startAutopilot(autopilot, '2', '6');

  // Then it is on: the round, the budget, a Stop button, and it is listed across notebooks
  await expect(
    autopilot.getByRole('button', { name: 'Stop autopilot' })
  ).toBeVisible();
  const round = autopilot.getByLabel('Round', { exact: true });
  await expect(round).toContainText(/of 2 rounds done \(round \d running\)/);
  const running = panel.getByRole('region', {
    name: 'Running across notebooks'
  });
  await expect(
    running.getByRole('listitem', { name: /autopilot\.ipynb/ })
  ).toBeVisible();
  // and the runs go on without a click each, counted against the budget
  await expect(autopilot.getByLabel('Runs used')).toContainText(
    /[1-6] of 6 used/
  );

  // When it ends by itself
  const reason = autopilot.getByLabel('Stop reason');
  await expect(reason).toBeVisible({ timeout: 50 * 1000 });

  // Then both rounds ran within the budget, it says why, and nothing is listed as running
  await expect(reason).toHaveText('Stopped: all 2 rounds done');
  await expect(round).toHaveText('2 of 2 rounds done');
  await expect(autopilot.getByLabel('Runs used')).toContainText('6 of 6 used');
  await expect(
    autopilot.getByRole('button', { name: 'Stop autopilot' })
  ).toHaveCount(0);
  await expect(running).toHaveCount(0);
  await expect(
    autopilot.getByRole('list', { name: 'Autopilot notes' })
  ).toContainText('round 1:');

  // And the lineage shows round 1 built on round 0's best, the best path marked
  const lineage = autopilot.getByRole('list', { name: 'Lineage' });
  const best = lineage.getByRole('listitem', { name: /, best path$/ });
  await expect(best.first()).toHaveAccessibleName('baseline, best path');
  await expect(best.first()).toHaveClass(/jp-mod-best-path/);
  const first = best.nth(1);
  await expect(first).toContainText('round 0');
  await expect(first).toContainText('approved by autopilot');
  await expect(first.getByLabel('Metric value').first()).toContainText(
    /test loss \d/
  );
  const nested = first.getByRole('listitem', { name: /, best path$/ }).first();
  await expect(nested).toContainText('round 1');
  await expect(nested).toContainText('approved by autopilot');
  // the chosen variations improve the metric along the best path
  const loss = async (item: Locator): Promise<number> => {
    const text = await item.getByLabel('Metric value').first().innerText();
    return Number(text.replace('test loss ', '').split(' ')[0]);
  };
  expect(await loss(nested)).toBeLessThan(await loss(first));
  expect(await loss(first)).toBeLessThan(await loss(best.first()));
  await autopilot.screenshot({
    path: testInfo.outputPath('autopilot-panel.png')
  });
});

test('Stop ends the autopilot within seconds', async ({ page, request }) => {
  // Given the autopilot started on the example notebook's training cell
  await putNotebook(request, 'autopilot-stop.ipynb', exampleNotebook());
  const panel = await proposeOnTraining(page, 'autopilot-stop.ipynb');
  const autopilot = panel.getByRole('region', { name: 'Autopilot' });
  // (a budget it cannot read is refused before anything starts)
  await startAutopilot(autopilot, '0', '20');
  await expect(autopilot.getByRole('alert')).toContainText(
    'Rounds must be a whole number from 1 to 50.'
  );
  await startAutopilot(autopilot, '3', '20');
  const stop = autopilot.getByRole('button', { name: 'Stop autopilot' });
  await expect(stop).toBeVisible();

  // When the researcher stops it
  const clicked = Date.now();
  await stop.click();

  // Then the stop reason appears within a few seconds and the form is back
  await expect(autopilot.getByLabel('Stop reason')).toHaveText(
    'Stopped: stopped by the researcher',
    { timeout: 5000 }
  );
  expect(Date.now() - clicked).toBeLessThan(5000);
  await expect(
    autopilot.getByRole('button', { name: 'Start autopilot' })
  ).toBeVisible();
  await expect(
    panel.getByRole('region', { name: 'Running across notebooks' })
  ).toHaveCount(0);
  // and nothing is left running or queued
  const runs = panel.getByRole('region', { name: 'Runs' });
  for (const status of ['running', 'queued', 'starting']) {
    await expect(
      runs.getByLabel('Run status').filter({ hasText: status })
    ).toHaveCount(0);
  }
});
