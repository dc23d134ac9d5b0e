/**
 * What the extension reads from and writes to the researcher's notebook.
 *
 * Writes go through the notebook's shared model, so the notebook's own undo reverts
 * them; nothing here executes code in the researcher's kernel.
 */
import { ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { ICell, IOutput } from './tokens';

function text(source: string | string[] | undefined): string {
  return Array.isArray(source) ? source.join('') : (source ?? '');
}

function outputsOf(cell: ICellModel): IOutput[] {
  const json = cell.toJSON() as { outputs?: unknown };
  return Array.isArray(json.outputs) ? (json.outputs as IOutput[]) : [];
}

/** The notebook's current cells, unsaved edits included, in the engine's shape. */
export function notebookCells(panel: NotebookPanel): ICell[] {
  const cells: ICell[] = [];
  const model = panel.content.model;
  if (!model) {
    return cells;
  }
  for (const cell of model.cells) {
    const json = cell.toJSON() as {
      execution_count?: number | null;
      source?: string | string[];
    };
    cells.push({
      id: cell.id,
      cell_type: cell.type,
      source: text(json.source),
      outputs: outputsOf(cell),
      execution_count: json.execution_count ?? null
    });
  }
  return cells;
}

/** The kernel the notebook uses (running session first, then its metadata). */
export function kernelName(panel: NotebookPanel): string | null {
  const session = panel.sessionContext;
  const running = session.session?.kernel?.name;
  if (running) {
    return running;
  }
  const spec = panel.content.model?.getMetadata('kernelspec') as
    { name?: string } | undefined;
  return spec?.name ?? session.kernelPreference.name ?? null;
}

/** The first error output of a cell, if it has one. */
export function errorOutput(
  cell: ICellModel | null | undefined
): IOutput | null {
  if (!cell || cell.type !== 'code') {
    return null;
  }
  return outputsOf(cell).find(o => o.output_type === 'error') ?? null;
}

// Terminal colour codes in tracebacks are noise in a text view.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** One line saying what went wrong: `ZeroDivisionError: division by zero`. */
export function errorCause(output: IOutput): string {
  const name = String(output.ename ?? 'Error').replace(ANSI, '');
  const value = String(output.evalue ?? '').replace(ANSI, '');
  return value ? `${name}: ${value}` : name;
}

/** The traceback's last few lines, colour codes removed. */
export function tracebackTail(output: IOutput, lines = 6): string[] {
  const traceback = Array.isArray(output.traceback) ? output.traceback : [];
  return traceback
    .join('\n')
    .replace(ANSI, '')
    .split('\n')
    .filter(line => line.trim().length > 0)
    .slice(-lines);
}

/** Index of the cell with this id, or -1. */
export function cellIndex(panel: NotebookPanel, cellId: string): number {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return -1;
  }
  for (let i = 0; i < cells.length; i++) {
    if (cells.get(i).id === cellId) {
      return i;
    }
  }
  return -1;
}

export function cellById(
  panel: NotebookPanel,
  cellId: string
): ICellModel | null {
  const index = cellIndex(panel, cellId);
  return index < 0 ? null : panel.content.model!.cells.get(index);
}

/** Select the cell and scroll it into view; false when it no longer exists. */
export async function revealCell(
  panel: NotebookPanel,
  cellId: string
): Promise<boolean> {
  const index = cellIndex(panel, cellId);
  if (index < 0) {
    return false;
  }
  const notebook = panel.content;
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  const widget = notebook.widgets[index];
  if (widget) {
    await notebook.scrollToCell(widget, 'center');
  }
  return true;
}

export type ApplyMode = 'replace' | 'insert-below';

/**
 * Put `code` into the notebook: as the cell's new source, or as a new code cell below.
 * Returns the index of the changed cell, or -1 when the target cell is gone.
 */
export function applyCode(
  panel: NotebookPanel,
  cellId: string,
  code: string,
  mode: ApplyMode
): number {
  const model = panel.content.model;
  const index = cellIndex(panel, cellId);
  if (!model || index < 0) {
    return -1;
  }
  if (mode === 'replace') {
    model.cells.get(index).sharedModel.setSource(code);
    panel.content.activeCellIndex = index;
    return index;
  }
  model.sharedModel.insertCell(index + 1, {
    cell_type: 'code',
    source: code,
    metadata: {}
  });
  panel.content.activeCellIndex = index + 1;
  return index + 1;
}
