/**
 * Commands of the extension. The cell context-menu items that call them are declared in
 * schema/plugin.json; labels and enabled state follow the active cell.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';

import { ResearchModel } from './model';
import { errorOutput, kernelName, notebookCells } from './notebook';
import { PANEL_ID } from './panel';
import { ExplorationKind } from './tokens';

export namespace CommandIDs {
  export const openPanel = 'research-agent:open-panel';
  export const propose = 'research-agent:propose';
  export const fix = 'research-agent:fix';
  export const seeds = 'research-agent:seeds';
}

export interface ICommandOptions {
  app: JupyterFrontEnd;
  tracker: INotebookTracker;
  model: ResearchModel;
  trans: TranslationBundle;
}

const NO_ARGS = { args: { type: 'object', properties: {} } } as const;

/** The notebook and its active code cell, when there is one. */
function target(tracker: INotebookTracker): {
  panel: NotebookPanel;
  cellId: string;
} | null {
  const panel = tracker.currentWidget;
  const cell = panel?.content.activeCell;
  if (!panel || !cell || cell.model.type !== 'code') {
    return null;
  }
  return { panel, cellId: cell.model.id };
}

function activeError(tracker: INotebookTracker): string | null {
  const output = errorOutput(tracker.currentWidget?.content.activeCell?.model);
  if (!output) {
    return null;
  }
  const name = String(output.ename ?? '');
  return name.length > 0 && name.length <= 40 ? name : '';
}

export function addCommands(options: ICommandOptions): void {
  const { app, tracker, model, trans } = options;

  const openPanel = (): void => {
    app.shell.activateById(PANEL_ID);
  };

  const start = async (kind: ExplorationKind): Promise<void> => {
    const found = target(tracker);
    if (!found) {
      return;
    }
    const { panel, cellId } = found;
    model.setNotebook(panel.context.path);
    openPanel();
    await model.create({
      notebook_path: panel.context.path,
      cell_id: cellId,
      kind,
      cells: notebookCells(panel),
      kernel_name: kernelName(panel),
      ...model.notebookMetric(panel.context.path)
    });
  };

  app.commands.addCommand(CommandIDs.openPanel, {
    label: trans.__('Open Research Panel'),
    caption: trans.__('Show the Research sidebar'),
    describedBy: NO_ARGS,
    execute: () => {
      openPanel();
      return model.refresh();
    }
  });

  app.commands.addCommand(CommandIDs.propose, {
    label: () => {
      const count = tracker.currentWidget?.content.activeCell?.model.toJSON()
        .execution_count as number | null | undefined;
      return typeof count === 'number'
        ? trans.__('Propose Variations of Cell [%1]', count)
        : trans.__('Propose Variations of This Cell');
    },
    caption: trans.__(
      'Ask for explained variations of the active cell; approved ones run in side kernels'
    ),
    describedBy: NO_ARGS,
    isEnabled: () => target(tracker) !== null,
    execute: () => start('variations')
  });

  app.commands.addCommand(CommandIDs.fix, {
    label: () => {
      const name = activeError(tracker);
      return name
        ? trans.__('Explain and Fix This %1', name)
        : trans.__('Explain and Fix This Error');
    },
    caption: trans.__('Condense the cell’s error and propose fixes'),
    describedBy: NO_ARGS,
    isEnabled: () => target(tracker) !== null && activeError(tracker) !== null,
    execute: () => start('fix')
  });

  app.commands.addCommand(CommandIDs.seeds, {
    label: trans.__('Check Robustness Across Seeds'),
    caption: trans.__(
      'Run the active cell with other random seeds and compare'
    ),
    describedBy: NO_ARGS,
    isEnabled: () => target(tracker) !== null,
    execute: () => start('seeds')
  });

  // Labels and enabled state depend on the active cell and its outputs.
  const refresh = (): void => {
    app.commands.notifyCommandChanged(CommandIDs.propose);
    app.commands.notifyCommandChanged(CommandIDs.fix);
    app.commands.notifyCommandChanged(CommandIDs.seeds);
  };
  tracker.activeCellChanged.connect(refresh);
  tracker.currentChanged.connect(refresh);
}
