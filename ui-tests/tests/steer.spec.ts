import { expect, test } from '@playwright/test';

import {
  cellWith,
  exampleNotebook,
  openCellMenu,
  openNotebook,
  putNotebook,
  researchPanel
} from './helpers';

test('edit a proposal, add your own, approve all, propose more with instructions', async ({
  page,
  request
}) => {
  // Given the example notebook and a robustness check of its training cell
  await putNotebook(request, 'steer.ipynb', exampleNotebook());
  const notebook = await openNotebook(page, 'steer.ipynb');
  const menu = await openCellMenu(page, cellWith(notebook, 'epochs = 30'));
  await menu
    .getByRole('menuitem', { name: 'Check Robustness Across Seeds' })
    .click();
  const panel = researchPanel(page);
  const detail = panel.getByRole('article');
  await expect(
    detail.getByRole('button', { name: 'Go to the explored cell' })
  ).toHaveText('Seeds of Cell 3');
  const proposals = detail.getByRole('region', { name: 'Proposals' });
  const first = proposals.getByRole('listitem').first();
  await expect(first).toBeVisible();
  const title = (
    await first.locator('.jp-ResearchAgent-card-title').innerText()
  ).trim();

  // When the researcher edits the first proposal's code and saves it
  await panel.getByRole('button', { name: `Edit ${title}` }).click();
  const editor = panel.getByRole('textbox', { name: `Code of ${title}` });
  await editor.fill('lr = 0.05\nepochs = 30\n\nw = np.zeros(d)');
  await panel.getByRole('button', { name: 'Save' }).click();

  // Then the card shows the edited change and still waits for approval
  const card = proposals.getByRole('listitem', { name: title });
  await expect(card.getByLabel(`Change made by ${title}`)).toContainText(
    '+ lr = 0.05'
  );
  await expect(card.getByLabel('Status')).toHaveText('proposed');
  await expect(
    panel.getByRole('button', { name: `Approve ${title}` })
  ).toBeEnabled();

  // When the researcher adds a variation of their own
  await detail.getByRole('button', { name: 'Add your own variation' }).click();
  await detail
    .getByRole('textbox', { name: 'Your variation of the cell' })
    .fill('lr = 0.2\nepochs = 30\n\nw = np.zeros(d)');
  await detail.getByRole('button', { name: 'Add variation' }).click();
  // Then it appears as a researcher's proposal
  const own = proposals.getByRole('listitem', {
    name: "Researcher's variation"
  });
  await expect(own).toContainText('researcher');
  await expect(
    own.getByLabel("Change made by Researcher's variation")
  ).toContainText('+ lr = 0.2');

  // When everything is approved at once
  await detail.getByRole('button', { name: 'Approve all' }).click();
  // Then no proposal waits any more and runs start
  await expect(
    proposals.getByLabel('Status').filter({ hasText: 'proposed' })
  ).toHaveCount(0);
  await expect(detail.getByRole('region', { name: 'Runs' })).toBeVisible();

  // When the researcher asks for more proposals with instructions
  await detail
    .getByLabel('Instructions')
    .fill('only change the number of epochs');
  await detail.getByRole('button', { name: 'Propose more' }).click();
  // Then a new exploration of the same cell is selected, carrying the instructions
  await expect(
    panel.getByRole('list', { name: 'Explorations' }).getByRole('listitem')
  ).toHaveCount(2);
  await expect(panel.getByRole('article')).toContainText(
    'Instructions: only change the number of epochs'
  );
});
