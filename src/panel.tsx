/**
 * The "Research" sidebar: banners, the active notebook's explorations and the selected one.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { IViewContext } from './context';
import { ExplorationList, ExplorationView } from './exploration';
import { researchIcon } from './icons';
import { RunningAutopilots } from './running';

export const PANEL_ID = 'research-agent-panel';

function Banners(props: { ctx: IViewContext }): JSX.Element {
  const { model, trans } = props.ctx;
  const status = model.status;
  return (
    <>
      {model.serverError && (
        <div className="jp-ResearchAgent-banner jp-mod-error" role="alert">
          <p>
            {trans.__(
              'The research agent server cannot be used: %1',
              model.serverError
            )}
          </p>
          <button
            className="jp-ResearchAgent-button"
            onClick={() => void model.refresh()}
          >
            {trans.__('Retry')}
          </button>
        </div>
      )}
      {status && !status.model.configured && (
        <div
          className="jp-ResearchAgent-banner jp-mod-info"
          aria-label={trans.__('Model')}
        >
          {trans.__('Model: not configured — offline proposer in use')}
          <span className="jp-ResearchAgent-muted">
            {' '}
            {trans.__(
              '(rule-based proposals; configure c.ResearchAgent.model for a language model)'
            )}
          </span>
        </div>
      )}
      {model.actionError && (
        <div className="jp-ResearchAgent-banner jp-mod-error" role="alert">
          {model.actionError}
        </div>
      )}
    </>
  );
}

function StatusLine(props: { ctx: IViewContext }): JSX.Element {
  const { model, trans } = props.ctx;
  const status = model.status;
  return (
    <div className="jp-ResearchAgent-status" role="status">
      {status ? (
        <>
          <span>{trans.__('Version %1', status.version)}</span>
          <span>
            {status.model.configured
              ? trans.__('Model: %1', status.model.name ?? '')
              : trans.__('Model: offline')}
          </span>
          <span>
            {trans.__(
              'Side kernels: %1 busy of %2, %3 queued',
              status.pool.busy,
              status.pool.pool_size,
              status.pool.queued
            )}
          </span>
        </>
      ) : (
        <span>{model.loading ? trans.__('Loading…') : ''}</span>
      )}
    </div>
  );
}

function PanelView(props: { ctx: IViewContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const selected = model.selected;
  return (
    <>
      <h2 className="jp-ResearchAgent-heading">{trans.__('Research')}</h2>
      <StatusLine ctx={ctx} />
      <Banners ctx={ctx} />
      <RunningAutopilots ctx={ctx} />
      {model.notebookPath === null ? (
        <p className="jp-ResearchAgent-muted">
          {trans.__(
            'Open a notebook, then right-click a code cell and choose "Propose Variations".'
          )}
        </p>
      ) : model.explorations.length === 0 ? (
        <p className="jp-ResearchAgent-muted">
          {trans.__(
            'No explorations of %1 yet. Right-click a code cell and choose "Propose Variations".',
            model.notebookPath
          )}
        </p>
      ) : (
        <>
          <ExplorationList ctx={ctx} />
          {selected && <ExplorationView ctx={ctx} exp={selected} />}
        </>
      )}
    </>
  );
}

/**
 * The sidebar widget. It renders the model; polling runs only while it is shown.
 */
export class ResearchPanel extends ReactWidget {
  constructor(private readonly _ctx: IViewContext) {
    super();
    this.id = PANEL_ID;
    this.title.icon = researchIcon;
    this.title.caption = _ctx.trans.__('Research');
    this.addClass('jp-ResearchAgent-panel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', _ctx.trans.__('Research'));
  }

  protected render(): JSX.Element {
    const model = this._ctx.model;
    return (
      <UseSignal signal={model.changed}>
        {() => <PanelView ctx={this._ctx} />}
      </UseSignal>
    );
  }

  protected onAfterShow(): void {
    this._ctx.model.setVisible(true);
  }

  protected onAfterHide(): void {
    this._ctx.model.setVisible(false);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._ctx.model.setVisible(true);
    }
  }
}
