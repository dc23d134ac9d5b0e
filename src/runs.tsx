/**
 * Runs: live status, elapsed time, progress, the last lines of output, Cancel.
 *
 * Side-run output is shown as plain text only (stream text and text/plain).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { formatSeconds, IViewContext, runStatusLabel } from './context';
import { tracebackTail } from './notebook';
import {
  IExploration,
  IOutput,
  IRun,
  IRunDetail,
  StateStrategy,
  TERMINAL_RUN_STATES
} from './tokens';

function elapsed(run: IRun, now: number): number | null {
  if (run.started_at) {
    const end = run.ended_at ? Date.parse(run.ended_at) : now;
    return Math.max(0, (end - Date.parse(run.started_at)) / 1000);
  }
  return run.duration_s;
}

function strategyLabel(
  strategy: StateStrategy,
  trans: TranslationBundle
): string {
  const labels: { [key in StateStrategy]: string } = {
    full_replay: trans.__('full replay'),
    sliced_replay: trans.__('sliced replay'),
    snapshot_prepared: trans.__('snapshot (prepared kernel)'),
    snapshot_live: trans.__('snapshot (live kernel)')
  };
  return labels[strategy];
}

/** How the run got the state its cell needs, and how long that took. */
function RunState(props: {
  run: IRun;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { run, trans } = props;
  if (!run.state_strategy) {
    return null;
  }
  const parts = [
    trans.__('state: %1', strategyLabel(run.state_strategy, trans))
  ];
  if (typeof run.rebuild_s === 'number') {
    // Rebuilds are often well under a second: two decimals say how far under.
    const seconds =
      run.rebuild_s < 10
        ? `${run.rebuild_s.toFixed(2)} s`
        : formatSeconds(run.rebuild_s);
    parts.push(trans.__('rebuild %1', seconds));
  }
  return (
    <p
      className="jp-ResearchAgent-muted jp-ResearchAgent-run-state"
      aria-label={trans.__('State rebuild')}
    >
      {parts.join(' · ')}
    </p>
  );
}

function plainText(output: IOutput): string {
  const join = (value: unknown): string =>
    Array.isArray(value)
      ? value.join('')
      : typeof value === 'string'
        ? value
        : '';
  switch (output.output_type) {
    case 'stream':
      return join(output.text);
    case 'error':
      return tracebackTail(output, 40).join('\n') + '\n';
    default: {
      const text = output.data?.['text/plain'];
      return text === undefined ? '' : join(text) + '\n';
    }
  }
}

function RunOutput(props: {
  detail: IRunDetail | undefined;
  label: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { detail, label, trans } = props;
  if (!detail) {
    return <p className="jp-ResearchAgent-muted">{trans.__('Loading…')}</p>;
  }
  const text = detail.cells
    .map(
      cell =>
        cell.outputs.map(plainText).join('') +
        (cell.truncated ? trans.__('[output truncated]') + '\n' : '')
    )
    .join('');
  return (
    <pre className="jp-ResearchAgent-output" aria-label={label}>
      {text || trans.__('(no output)')}
    </pre>
  );
}

function RunRow(props: {
  ctx: IViewContext;
  exp: IExploration;
  run: IRun;
  label: string;
}): JSX.Element {
  const { ctx, exp, run, label } = props;
  const { model, trans } = ctx;
  const live = !TERMINAL_RUN_STATES.has(run.status);
  const { done, total } = run.progress;
  const shown = model.ui.runOutputShown(run.id);
  return (
    <li
      className={`jp-ResearchAgent-run jp-mod-${run.status}`}
      aria-label={trans.__('Run of %1', label)}
    >
      <div className="jp-ResearchAgent-run-head">
        <span className="jp-ResearchAgent-run-label">{label}</span>
        {run.seed !== null && exp.seeds > 1 && (
          <span className="jp-ResearchAgent-muted">
            {trans.__('seed %1', run.seed)}
          </span>
        )}
        <span
          className={`jp-ResearchAgent-badge jp-mod-${run.status}`}
          aria-label={trans.__('Run status')}
        >
          {runStatusLabel(run.status, trans)}
        </span>
        <span className="jp-ResearchAgent-muted">
          {formatSeconds(elapsed(run, model.now))}
        </span>
      </div>
      <RunState run={run} trans={trans} />
      {total > 0 && (
        <progress
          className="jp-ResearchAgent-progress"
          max={total}
          value={done}
          aria-label={trans.__('Cells run: %1 of %2', done, total)}
        />
      )}
      {run.reason && (
        <p
          className={`jp-ResearchAgent-reason${run.reason.startsWith('no metric') ? ' jp-mod-warn' : ''}`}
          aria-label={trans.__('Reason')}
        >
          {run.reason}
        </p>
      )}
      {live && run.tail.length > 0 && (
        <pre
          className="jp-ResearchAgent-tail"
          aria-label={trans.__('Last output lines')}
        >
          {run.tail.slice(-8).join('\n')}
        </pre>
      )}
      <div className="jp-ResearchAgent-actions">
        {live && (
          <button
            className="jp-ResearchAgent-button jp-mod-warn"
            aria-label={trans.__('Cancel run of %1', label)}
            disabled={model.pending(`cancel:${run.id}`)}
            onClick={() => void model.cancelRun(exp.id, run.id)}
          >
            {trans.__('Cancel')}
          </button>
        )}
        {!live && (
          <button
            className="jp-ResearchAgent-button"
            aria-expanded={shown}
            aria-label={trans.__('Output of %1', label)}
            onClick={() => void model.toggleOutput(run.id)}
          >
            {shown ? trans.__('Hide output') : trans.__('Show output')}
          </button>
        )}
      </div>
      {shown && (
        <RunOutput
          detail={model.runDetail(run.id)}
          label={trans.__('Captured output of %1', label)}
          trans={trans}
        />
      )}
    </li>
  );
}

export function RunList(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element | null {
  const { ctx, exp } = props;
  const { trans } = ctx;
  const titles = new Map(exp.proposals.map(p => [p.id, p.title]));
  const runs = exp.baseline ? [exp.baseline, ...exp.runs] : exp.runs;
  if (runs.length === 0) {
    return null;
  }
  return (
    <section className="jp-ResearchAgent-section" aria-label={trans.__('Runs')}>
      <h3 className="jp-ResearchAgent-subheading">{trans.__('Runs')}</h3>
      <ul className="jp-ResearchAgent-runs">
        {runs.map(run => (
          <RunRow
            key={run.id}
            ctx={ctx}
            exp={exp}
            run={run}
            label={
              run.is_baseline
                ? trans.__('baseline')
                : (titles.get(run.proposal_id ?? '') ?? run.id)
            }
          />
        ))}
      </ul>
    </section>
  );
}
