import { APIRequestContext, expect, Locator, Page } from '@playwright/test';
import { readFileSync } from 'fs';
import { join } from 'path';

export const TOKEN = process.env.JRA_UI_TEST_TOKEN || 'research-agent-ui-test';
const AUTH = { Authorization: `token ${TOKEN}` };

/**
 * Open JupyterLab and wait until the shell is ready. `reset` drops the workspace the
 * previous test left behind (open notebooks, an expanded sidebar).
 */
export async function openLab(page: Page, path = '/lab'): Promise<void> {
  await page.goto(`${path}?reset&token=${TOKEN}`);
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

// ------------------------------------------------------------------ notebooks

export interface INotebookCell {
  id: string;
  source: string;
  outputs?: Record<string, unknown>[];
  execution_count?: number | null;
}

/** A notebook as nbformat 4.5 JSON with the given code cells. */
export function notebookJson(cells: INotebookCell[]): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: {
        name: 'python3',
        display_name: 'Python 3',
        language: 'python'
      },
      language_info: { name: 'python' }
    },
    cells: cells.map(cell => ({
      cell_type: 'code',
      id: cell.id,
      metadata: {},
      source: cell.source,
      outputs: cell.outputs ?? [],
      execution_count: cell.execution_count ?? null
    }))
  };
}

/** The repository's example notebook (a tiny logistic regression). */
export function exampleNotebook(): Record<string, unknown> {
  const path = join(__dirname, '..', '..', 'examples', 'exploration.ipynb');
  return JSON.parse(readFileSync(path, 'utf-8'));
}

/** Save a notebook into the test server's root through the contents API. */
export async function putNotebook(
  request: APIRequestContext,
  path: string,
  content: Record<string, unknown>
): Promise<void> {
  const response = await request.put(`/api/contents/${path}`, {
    headers: AUTH,
    data: { type: 'notebook', format: 'json', content }
  });
  expect(response.ok(), await response.text()).toBeTruthy();
}

/** Call the research agent's REST API directly (setting up a scenario). */
export async function callAPI<T>(
  request: APIRequestContext,
  method: 'GET' | 'POST',
  endPoint: string,
  data?: unknown
): Promise<T> {
  const url = `/api/research-agent/${endPoint}`;
  const response =
    method === 'GET'
      ? await request.get(url, { headers: AUTH })
      : await request.post(url, { headers: AUTH, data: data ?? {} });
  expect(response.ok(), await response.text()).toBeTruthy();
  return (await response.json()) as T;
}

/** Open a notebook of the server root in JupyterLab. */
export async function openNotebook(page: Page, path: string): Promise<Locator> {
  await openLab(page, `/lab/tree/${path}`);
  const notebook = page.locator('.jp-NotebookPanel:visible .jp-Notebook');
  await expect(notebook.locator('.jp-Cell').first()).toBeVisible();
  return notebook;
}

/** The code cell whose source contains `text`. */
export function cellWith(notebook: Locator, text: string): Locator {
  return notebook.locator('.jp-CodeCell', { hasText: text }).first();
}

/** Right-click a cell and return the context menu. */
export async function openCellMenu(
  page: Page,
  cell: Locator
): Promise<Locator> {
  await cell.locator('.jp-InputPrompt').click({ button: 'right' });
  const menu = page.locator('.lm-Menu').first();
  await expect(menu).toBeVisible();
  return menu;
}

/** The Research sidebar. */
export function researchPanel(page: Page): Locator {
  return page.getByRole('region', { name: 'Research' });
}

/** Show the Research sidebar by its tab (a click on the tab of a shown panel hides it). */
export async function showResearchPanel(page: Page): Promise<Locator> {
  const panel = researchPanel(page);
  if (!(await panel.isVisible())) {
    await page
      .locator('.jp-SideBar li[data-id="research-agent-panel"]')
      .click();
  }
  await expect(panel).toBeVisible();
  return panel;
}
