import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addCommands, CommandIDs } from './commands';
import { IViewContext } from './context';
// The sidebar tab and the live model exist from start-up, so these load at once.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { ResearchModel } from './model';
import {
  applyCode,
  cellById,
  cellIndex,
  errorOutput,
  kernelName,
  notebookCells,
  revealCell
} from './notebook';
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { ResearchPanel } from './panel';
import { IExploration } from './tokens';

export { CommandIDs } from './commands';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-research-agent:plugin',
  description: 'A research copilot: proposes and runs experiment variations.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyter_research_agent');

    const notebookAt = (path: string): NotebookPanel | null =>
      tracker.find(panel => panel.context.path === path) ?? null;

    const model = new ResearchModel({
      events: app.serviceManager.events ?? null,
      snapshot: path => {
        const panel = notebookAt(path);
        return panel
          ? { cells: notebookCells(panel), kernel_name: kernelName(panel) }
          : null;
      }
    });

    const openNotebook = (exp: IExploration): NotebookPanel | null => {
      const panel = notebookAt(exp.notebook_path);
      if (!panel) {
        Notification.warning(
          trans.__(
            'Open %1 first: the exploration belongs to it.',
            exp.notebook_path
          ),
          { autoClose: 5000 }
        );
        return null;
      }
      app.shell.activateById(panel.id);
      return panel;
    };

    const ctx: IViewContext = {
      model,
      trans,
      reveal: exp => {
        const panel = openNotebook(exp);
        if (panel) {
          void revealCell(panel, exp.cell_id);
        }
      },
      apply: (exp, code, mode) => {
        const panel = openNotebook(exp);
        if (!panel) {
          return;
        }
        const index = applyCode(panel, exp.cell_id, code, mode);
        if (index < 0) {
          Notification.warning(
            trans.__('The explored cell is no longer in the notebook.'),
            {
              autoClose: 5000
            }
          );
          return;
        }
        void revealCell(panel, panel.content.model!.cells.get(index).id);
        Notification.info(
          mode === 'replace'
            ? trans.__(
                'Replaced cell %1; undo reverts it. Nothing was run.',
                index + 1
              )
            : trans.__(
                'Inserted cell %1; undo reverts it. Nothing was run.',
                index + 1
              ),
          { autoClose: 4000 }
        );
      },
      errorOf: exp => {
        const panel = notebookAt(exp.notebook_path);
        return panel ? errorOutput(cellById(panel, exp.cell_id)) : null;
      },
      cellLabel: exp => {
        const panel = notebookAt(exp.notebook_path);
        const index = panel ? cellIndex(panel, exp.cell_id) : -1;
        return index < 0 ? null : trans.__('Cell %1', index + 1);
      }
    };

    const panel = new ResearchPanel(ctx);
    app.shell.add(panel, 'left', { rank: 1000 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }

    const follow = (): void => {
      model.setNotebook(tracker.currentWidget?.context.path ?? null);
    };
    tracker.currentChanged.connect(follow);
    follow();

    addCommands({ app, tracker, model, trans });
    if (palette) {
      const category = trans.__('Research Agent');
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.propose,
        CommandIDs.fix,
        CommandIDs.seeds
      ]) {
        palette.addItem({ command, category });
      }
    }
  }
};

export default plugin;
