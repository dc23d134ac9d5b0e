/**
 * The autopilots running in any notebook, each with its best value so far and a Stop button:
 * the researcher supervises them all from one panel.
 */
import * as React from 'react';

import { formatNumber, IViewContext } from './context';
import { IAutopilotSummary } from './tokens';

function RunningItem(props: {
  ctx: IViewContext;
  pilot: IAutopilotSummary;
}): JSX.Element {
  const { ctx, pilot } = props;
  const { model, trans } = ctx;
  const state = pilot.state;
  const cell = ctx.cellLabel(pilot) ?? trans.__('cell %1', pilot.cell_id);
  const where = trans.__('%1, %2', pilot.notebook_path, cell);
  return (
    <li className="jp-ResearchAgent-running-item" aria-label={where}>
      <div className="jp-ResearchAgent-running-where">
        <span className="jp-ResearchAgent-running-path">
          {pilot.notebook_path}
        </span>
        <span className="jp-ResearchAgent-muted">{cell}</span>
      </div>
      <div className="jp-ResearchAgent-muted">
        {trans.__(
          '%1 of %2 rounds done, %3 of %4 runs',
          state.rounds_done,
          state.settings.rounds,
          state.runs_used,
          state.settings.budget_runs
        )}
        {pilot.best_value !== null &&
          ` · ${trans.__(
            'best %1 %2',
            pilot.metric ?? '',
            formatNumber(pilot.best_value)
          )}`}
      </div>
      <button
        className="jp-ResearchAgent-button jp-mod-warn"
        aria-label={trans.__('Stop autopilot on %1', where)}
        disabled={model.pending(`autopilot-stop:${pilot.exploration_id}`)}
        onClick={() => void model.autopilot.stop(pilot.exploration_id)}
      >
        {trans.__('Stop')}
      </button>
    </li>
  );
}

export function RunningAutopilots(props: {
  ctx: IViewContext;
}): JSX.Element | null {
  const { ctx } = props;
  const running = ctx.model.autopilot.running;
  if (running.length === 0) {
    return null;
  }
  return (
    <section
      className="jp-ResearchAgent-running"
      aria-label={ctx.trans.__('Running across notebooks')}
    >
      <h3 className="jp-ResearchAgent-subheading">
        {ctx.trans.__('Autopilot running across notebooks')}
      </h3>
      <ul className="jp-ResearchAgent-running-list">
        {running.map(pilot => (
          <RunningItem key={pilot.exploration_id} ctx={ctx} pilot={pilot} />
        ))}
      </ul>
    </section>
  );
}
