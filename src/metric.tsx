/**
 * The metric an exploration compares: the researcher names it (and its direction) for the
 * next proposals, and sees where the engine reads it from.
 */
import * as React from 'react';

import { IViewContext } from './context';
import { Direction, IExploration, IRun } from './tokens';

/** Run.metric_sources value of a metric read through the binding, not from the output. */
export const BINDING_SOURCE = 'binding';

function directionOf(value: string): Direction | null {
  return value === 'maximize' || value === 'minimize' ? value : null;
}

/** "bound to `acc` (Cell 4)": the code the engine evaluates after each run. */
function BindingNote(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element | null {
  const { ctx, exp } = props;
  const { trans } = ctx;
  const binding = exp.metric?.binding;
  if (!binding) {
    return null;
  }
  const cellId = binding.cell_id;
  const where = cellId
    ? (ctx.cellLabel({ notebook_path: exp.notebook_path, cell_id: cellId }) ??
      trans.__('cell %1', cellId))
    : trans.__('your expression');
  return (
    <p
      className="jp-ResearchAgent-muted jp-ResearchAgent-binding"
      aria-label={trans.__('Metric binding')}
    >
      {trans.__('bound to `%1` (%2)', binding.expression, where)}
    </p>
  );
}

/** A compact row: the metric's name (or `name=expression`) and its direction. */
export function MetricRow(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const choice = model.metricChoice(exp);
  const textId = `jp-ResearchAgent-metric-${exp.id}`;
  return (
    <div className="jp-ResearchAgent-metric">
      <div className="jp-ResearchAgent-metric-row">
        <label htmlFor={textId}>{trans.__('Metric')}</label>
        <input
          id={textId}
          type="text"
          className="jp-ResearchAgent-text-input"
          placeholder={trans.__('e.g. test accuracy=acc')}
          title={trans.__(
            'A printed metric’s name, or name=expression to read it from the code; used by Propose more and the cell menu'
          )}
          spellCheck={false}
          value={choice.text}
          onChange={e =>
            model.setMetricChoice(exp, { ...choice, text: e.target.value })
          }
        />
        <select
          className="jp-ResearchAgent-select"
          aria-label={trans.__('Metric direction')}
          value={choice.direction ?? 'auto'}
          onChange={e =>
            model.setMetricChoice(exp, {
              ...choice,
              direction: directionOf(e.target.value)
            })
          }
        >
          <option value="auto">{trans.__('auto')}</option>
          <option value="maximize">{trans.__('maximize')}</option>
          <option value="minimize">{trans.__('minimize')}</option>
        </select>
      </div>
      <BindingNote ctx={ctx} exp={exp} />
    </div>
  );
}

/** True when any of the runs got the metric through the binding rather than the output. */
export function readThroughBinding(
  runs: readonly IRun[],
  metric: string
): boolean {
  return runs.some(run => run.metric_sources?.[metric] === BINDING_SOURCE);
}

/** A superscript "b": this value was read from the bound expression after the run. */
export function BindingMark(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const expression = exp.metric?.binding?.expression;
  const text = expression
    ? ctx.trans.__('read from `%1` after the run', expression)
    : ctx.trans.__('read from the code after the run');
  return (
    <sup
      className="jp-ResearchAgent-source-mark"
      title={text}
      aria-label={text}
    >
      {ctx.trans.__('b')}
    </sup>
  );
}
