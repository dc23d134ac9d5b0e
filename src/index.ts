import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { ResearchPanel } from './panel';

export namespace CommandIDs {
  export const openPanel = 'research-agent:open-panel';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-research-agent:plugin',
  description: 'A research copilot: proposes and runs experiment variations.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyter_research_agent');
    const panel = new ResearchPanel(trans);
    app.shell.add(panel, 'left', { rank: 1000 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open Research Panel'),
      caption: trans.__('Show the Research sidebar'),
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => {
        app.shell.activateById(panel.id);
        return panel.refresh();
      }
    });
    if (palette) {
      palette.addItem({
        command: CommandIDs.openPanel,
        category: trans.__('Research Agent')
      });
    }
  }
};

export default plugin;
