import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { researchIcon } from './icons';
import { requestAPI, ResearchAgentAPIError } from './request';

/** Body of `GET /api/research-agent/status`. */
export interface IStatus {
  version: string;
  model: {
    configured: boolean;
    name: string | null;
    base_url_configured: boolean;
  };
}

export const PANEL_ID = 'research-agent-panel';

/**
 * The "Research" sidebar: shows the server extension's status.
 */
export class ResearchPanel extends Widget {
  constructor(
    trans: TranslationBundle = nullTranslator.load('jupyter_research_agent')
  ) {
    super();
    this._trans = trans;
    this.id = PANEL_ID;
    this.title.icon = researchIcon;
    this.title.caption = trans.__('Research');
    this.addClass('jp-ResearchAgent-panel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Research'));

    const heading = document.createElement('h2');
    heading.textContent = trans.__('Research');
    heading.className = 'jp-ResearchAgent-heading';
    this._status = document.createElement('div');
    this._status.className = 'jp-ResearchAgent-status';
    this._status.setAttribute('role', 'status');
    this.node.append(heading, this._status);
  }

  /** Fetch the status from the server and show it. */
  async refresh(): Promise<void> {
    this._status.textContent = this._trans.__('Loading…');
    try {
      const status = await requestAPI<IStatus>('status');
      this._showStatus(status);
    } catch (error) {
      this._showError(error);
    }
  }

  protected onAfterAttach(): void {
    void this.refresh();
  }

  private _showStatus(status: IStatus): void {
    const trans = this._trans;
    const version = document.createElement('p');
    version.className = 'jp-ResearchAgent-version';
    version.textContent = trans.__('Version %1', status.version);
    const model = document.createElement('p');
    model.className = 'jp-ResearchAgent-model';
    model.textContent = status.model.configured
      ? trans.__('Model: configured (%1)', status.model.name ?? '')
      : trans.__('Model: not configured — offline proposer in use');
    this._status.replaceChildren(version, model);
  }

  private _showError(error: unknown): void {
    const message = document.createElement('p');
    message.className = 'jp-ResearchAgent-error';
    message.setAttribute('role', 'alert');
    message.textContent =
      error instanceof ResearchAgentAPIError ? error.message : String(error);
    this._status.replaceChildren(message);
  }

  private _trans: TranslationBundle;
  private _status: HTMLDivElement;
}
