/**
 * The comparison: a sortable table of baseline and variations, and a bar chart of one
 * metric per variation against the baseline (SVG built from React elements).
 */
import * as React from 'react';

import { formatNumber, IViewContext } from './context';
import { BindingMark, readThroughBinding } from './metric';
import { IComparisonRow, IExploration, IRun } from './tokens';
import { ISort, SortKey } from './uistate';

function sortValue(
  row: IComparisonRow,
  key: SortKey,
  metric: string | null
): number | string | null {
  switch (key) {
    case 'label':
      return row.label.toLowerCase();
    case 'metric':
      return metric ? (row.metrics[metric] ?? null) : null;
    case 'delta':
      return row.delta;
    case 'pct_change':
      return row.pct_change;
  }
}

/** The baseline stays on top; variations follow in the chosen order, blanks last. */
export function sortedRows(
  rows: IComparisonRow[],
  sort: ISort | null,
  metric: string | null
): IComparisonRow[] {
  const baseline = rows.filter(r => r.is_baseline);
  const variations = rows.filter(r => !r.is_baseline);
  if (sort) {
    variations.sort((a, b) => {
      const x = sortValue(a, sort.key, metric);
      const y = sortValue(b, sort.key, metric);
      if (x === null || y === null) {
        return x === y ? 0 : x === null ? 1 : -1;
      }
      const order = x < y ? -1 : x > y ? 1 : 0;
      return sort.descending ? -order : order;
    });
  }
  return [...baseline, ...variations];
}

function SortHeader(props: {
  ctx: IViewContext;
  label: string;
  sortKey: SortKey;
}): JSX.Element {
  const { ctx, label, sortKey } = props;
  const sort = ctx.model.ui.sort;
  const active = sort?.key === sortKey;
  const direction = active
    ? sort!.descending
      ? 'descending'
      : 'ascending'
    : 'none';
  return (
    <th scope="col" aria-sort={direction}>
      <button
        className="jp-ResearchAgent-sort"
        aria-label={ctx.trans.__('Sort by %1', label)}
        onClick={() => ctx.model.ui.sortBy(sortKey)}
      >
        {label}
        {active ? (sort!.descending ? ' ▼' : ' ▲') : ''}
      </button>
    </th>
  );
}

function metricNames(rows: IComparisonRow[]): string[] {
  const names = new Set<string>();
  rows.forEach(row => Object.keys(row.metrics).forEach(n => names.add(n)));
  return [...names].sort();
}

/** The runs behind a row: the baseline's, or one variation's (one per seed). */
function rowRuns(exp: IExploration, row: IComparisonRow): IRun[] {
  const all = exp.baseline ? [exp.baseline, ...exp.runs] : exp.runs;
  return all.filter(run =>
    row.is_baseline ? run.is_baseline : run.proposal_id === row.proposal_id
  );
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function MetricChart(props: {
  ctx: IViewContext;
  exp: IExploration;
  metric: string;
}): JSX.Element | null {
  const { ctx, exp, metric } = props;
  const rows = exp.comparison.rows.filter(
    r => r.metrics[metric] !== undefined && Number.isFinite(r.metrics[metric])
  );
  if (rows.length === 0) {
    return null;
  }
  const values = rows.map(r => r.metrics[metric]);
  const low = Math.min(0, ...values);
  const high = Math.max(0, ...values);
  const span = high - low || 1;
  // Sized for a sidebar about 250 px wide, so 10 px text stays readable.
  const [labelW, barW, rowH] = [90, 100, 18];
  const x = (v: number): number => labelW + ((v - low) / span) * barW;
  const base = rows.find(r => r.is_baseline)?.metrics[metric];
  const height = rows.length * rowH + 8;
  return (
    <svg
      className="jp-ResearchAgent-chart"
      role="img"
      aria-label={ctx.trans.__('%1 per variation against the baseline', metric)}
      viewBox={`0 0 ${labelW + barW + 45} ${height}`}
      width="100%"
    >
      {rows.map((row, i) => {
        const v = row.metrics[metric];
        const y = i * rowH + 4;
        const cls = row.is_baseline
          ? 'jp-mod-baseline'
          : row.best
            ? 'jp-mod-best'
            : '';
        return (
          <g key={row.proposal_id ?? 'baseline'} className={cls}>
            <title>{`${row.label}: ${formatNumber(v)}`}</title>
            <text x={labelW - 4} y={y + 12} textAnchor="end">
              {shorten(row.label, 15)}
            </text>
            <rect
              x={Math.min(x(0), x(v))}
              y={y + 2}
              width={Math.max(1, Math.abs(x(v) - x(0)))}
              height={rowH - 6}
            />
            <text x={Math.max(x(0), x(v)) + 3} y={y + 12}>
              {formatNumber(v)}
            </text>
          </g>
        );
      })}
      {base !== undefined && (
        <line
          className="jp-ResearchAgent-chart-baseline"
          x1={x(base)}
          x2={x(base)}
          y1={0}
          y2={height}
        />
      )}
    </svg>
  );
}

export function ComparisonView(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element | null {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const comparison = exp.comparison;
  if (comparison.rows.length === 0) {
    return null;
  }
  const metric = comparison.metric;
  const names = metricNames(comparison.rows);
  const chosen = model.ui.chartMetric(exp.id) ?? metric ?? names[0] ?? null;
  const rows = sortedRows(comparison.rows, model.ui.sort, metric);
  const code = new Map(exp.proposals.map(p => [p.id, p.code]));
  const metricLabel = metric ?? trans.__('metric');
  return (
    <section
      className="jp-ResearchAgent-section"
      aria-label={trans.__('Comparison')}
    >
      <h3 className="jp-ResearchAgent-subheading">{trans.__('Comparison')}</h3>
      {exp.interpretation ? (
        <p
          className="jp-ResearchAgent-summary"
          aria-label={trans.__('Interpretation')}
        >
          {exp.interpretation}
        </p>
      ) : (
        comparison.summary && (
          <p className="jp-ResearchAgent-summary">{comparison.summary}</p>
        )
      )}
      <table className="jp-ResearchAgent-table">
        <thead>
          <tr>
            <SortHeader
              ctx={ctx}
              label={trans.__('Variation')}
              sortKey="label"
            />
            <SortHeader ctx={ctx} label={metricLabel} sortKey="metric" />
            <SortHeader ctx={ctx} label={trans.__('Δ')} sortKey="delta" />
            <SortHeader ctx={ctx} label={trans.__('%')} sortKey="pct_change" />
          </tr>
        </thead>
        <tbody>
          {rows.map(row => {
            const value = metric ? row.metrics[metric] : undefined;
            const std = metric ? row.std[metric] : undefined;
            const rowCode = row.proposal_id
              ? code.get(row.proposal_id)
              : undefined;
            return (
              <tr
                key={row.proposal_id ?? 'baseline'}
                className={row.best ? 'jp-mod-best' : ''}
                aria-label={row.label}
              >
                <th scope="row">
                  {row.label}
                  {row.best && (
                    <span className="jp-ResearchAgent-badge jp-mod-best">
                      {trans.__('best')}
                    </span>
                  )}
                  {row.status !== 'succeeded' && (
                    <span className="jp-ResearchAgent-muted">
                      {' '}
                      ({row.status})
                    </span>
                  )}
                  {rowCode !== undefined && (
                    <span className="jp-ResearchAgent-row-actions">
                      <button
                        className="jp-ResearchAgent-button"
                        aria-label={trans.__('Replace cell with %1', row.label)}
                        onClick={() => ctx.apply(exp, rowCode, 'replace')}
                      >
                        {trans.__('Replace')}
                      </button>
                      <button
                        className="jp-ResearchAgent-button"
                        aria-label={trans.__(
                          'Insert %1 below the cell',
                          row.label
                        )}
                        onClick={() => ctx.apply(exp, rowCode, 'insert-below')}
                      >
                        {trans.__('Insert below')}
                      </button>
                    </span>
                  )}
                </th>
                <td>
                  {formatNumber(value)}
                  {std !== undefined && row.n > 1 && ` ± ${formatNumber(std)}`}
                  {metric !== null &&
                    value !== undefined &&
                    readThroughBinding(rowRuns(exp, row), metric) && (
                      <BindingMark ctx={ctx} exp={exp} />
                    )}
                </td>
                <td>{formatNumber(row.delta)}</td>
                <td>
                  {row.pct_change === null
                    ? '—'
                    : `${formatNumber(row.pct_change)}%`}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {chosen && names.length > 0 && (
        <div className="jp-ResearchAgent-chart-box">
          <label>
            {trans.__('Chart')}{' '}
            <select
              className="jp-ResearchAgent-select"
              value={chosen}
              onChange={e => model.ui.setChartMetric(exp.id, e.target.value)}
            >
              {names.map(name => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </label>
          <MetricChart ctx={ctx} exp={exp} metric={chosen} />
        </div>
      )}
    </section>
  );
}
