/**
 * One exploration in detail, and the list of the notebook's explorations.
 */
import * as React from 'react';

import { AutopilotSection } from './autopilot';
import { ComparisonView } from './comparison';
import { IViewContext } from './context';
import { MetricRow } from './metric';
import { errorCause, tracebackTail } from './notebook';
import { ProposalCard, SteeringForm } from './proposals';
import { RunList } from './runs';
import { ExplorationKind, IExploration } from './tokens';

export function kindLabel(kind: ExplorationKind, ctx: IViewContext): string {
  switch (kind) {
    case 'fix':
      return ctx.trans.__('Fix');
    case 'seeds':
      return ctx.trans.__('Seeds');
    default:
      return ctx.trans.__('Variations');
  }
}

function firstLine(source: string): string {
  const line = source.split('\n').find(l => l.trim().length > 0) ?? '';
  return line.length > 48 ? `${line.slice(0, 47)}…` : line;
}

export function ExplorationList(props: { ctx: IViewContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const selected = model.selected;
  return (
    <ul
      className="jp-ResearchAgent-explorations"
      aria-label={trans.__('Explorations')}
    >
      {model.explorations.map(exp => {
        const cell = ctx.cellLabel(exp) ?? trans.__('cell removed');
        const current = exp.id === selected?.id;
        return (
          <li key={exp.id}>
            <button
              className={`jp-ResearchAgent-exploration${current ? ' jp-mod-selected' : ''}`}
              aria-current={current}
              aria-label={trans.__(
                '%1 of %2: %3',
                kindLabel(exp.kind, ctx),
                cell,
                exp.status
              )}
              onClick={() => {
                model.select(exp.id);
                ctx.reveal(exp);
              }}
            >
              <span className="jp-ResearchAgent-exploration-kind">
                {kindLabel(exp.kind, ctx)}
              </span>
              <span>{cell}</span>
              <span className={`jp-ResearchAgent-badge jp-mod-${exp.status}`}>
                {exp.status}
              </span>
              {model.autopilot.isActive(exp) && (
                <span className="jp-ResearchAgent-badge jp-mod-autopilot">
                  {trans.__('autopilot')}
                </span>
              )}
              <code className="jp-ResearchAgent-exploration-source">
                {firstLine(exp.cell_source)}
              </code>
            </button>
          </li>
        );
      })}
    </ul>
  );
}

/**
 * For a fix: the engine's triage (condensed error and likely cause) when it has one,
 * else the error the cell shows now, condensed here.
 */
function ErrorCause(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { trans } = ctx;
  const triage = exp.triage;
  const output = triage ? null : ctx.errorOf(exp);
  const headline = triage
    ? [triage.ename, triage.evalue].filter(Boolean).join(': ')
    : output
      ? errorCause(output)
      : '';
  // The condensed text repeats the headline and the likely cause: keep the rest.
  const details = triage
    ? (triage.condensed ?? '')
        .split('\n')
        .filter(
          line =>
            line.trim() &&
            line.trim() !== headline &&
            !line.startsWith('Likely cause:')
        )
        .join('\n')
    : output
      ? tracebackTail(output).join('\n')
      : '';
  return (
    <section
      className="jp-ResearchAgent-cause"
      aria-label={trans.__('Cause of the error')}
    >
      <h3 className="jp-ResearchAgent-subheading">{trans.__('Cause')}</h3>
      {headline ? (
        <p className="jp-ResearchAgent-cause-line">{headline}</p>
      ) : (
        <p className="jp-ResearchAgent-muted">
          {trans.__('The cell shows no error now.')}
        </p>
      )}
      {triage?.likely_cause && (
        <p className="jp-ResearchAgent-likely">
          {trans.__('Likely cause: %1', triage.likely_cause)}
        </p>
      )}
      {details && <pre className="jp-ResearchAgent-output">{details}</pre>}
    </section>
  );
}

export function ExplorationView(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const waiting = exp.proposals.filter(
    p => p.status === 'proposed' && p.approvable
  );
  const cell = ctx.cellLabel(exp);
  return (
    <article
      className="jp-ResearchAgent-detail"
      aria-label={trans.__('Exploration of %1', cell ?? exp.cell_id)}
    >
      <div className="jp-ResearchAgent-detail-head">
        <button
          className="jp-ResearchAgent-link"
          aria-label={trans.__('Go to the explored cell')}
          disabled={cell === null}
          onClick={() => ctx.reveal(exp)}
        >
          {trans.__(
            '%1 of %2',
            kindLabel(exp.kind, ctx),
            cell ?? trans.__('a removed cell')
          )}
        </button>
        <span
          className={`jp-ResearchAgent-badge jp-mod-${exp.status}`}
          aria-label={trans.__('Exploration status')}
        >
          {exp.status}
        </span>
      </div>
      {exp.instructions && (
        <p className="jp-ResearchAgent-muted">
          {trans.__('Instructions: %1', exp.instructions)}
        </p>
      )}
      <MetricRow ctx={ctx} exp={exp} />
      {exp.error && (
        <p className="jp-ResearchAgent-error" role="alert">
          {exp.error}
        </p>
      )}
      {exp.status_message && (
        <p className="jp-ResearchAgent-muted" aria-live="polite">
          {exp.status_message}
        </p>
      )}
      {exp.kind === 'fix' && <ErrorCause ctx={ctx} exp={exp} />}
      {exp.status === 'proposing' && (
        <p className="jp-ResearchAgent-muted" aria-busy="true">
          {trans.__('Proposing…')}
        </p>
      )}
      {exp.status !== 'proposing' && exp.proposals.length === 0 && (
        <p className="jp-ResearchAgent-muted">
          {exp.kind === 'fix' && exp.proposer === 'offline'
            ? trans.__(
                'No fix proposed: the offline proposer does not write fixes; add your own below.'
              )
            : trans.__('No proposals for this cell.')}
        </p>
      )}
      {exp.proposals.length > 0 && (
        <section
          className="jp-ResearchAgent-section"
          aria-label={trans.__('Proposals')}
        >
          <div className="jp-ResearchAgent-section-head">
            <h3 className="jp-ResearchAgent-subheading">
              {trans.__('Proposals')}
            </h3>
            <button
              className="jp-ResearchAgent-button jp-mod-accept"
              disabled={
                waiting.length === 0 || model.pending(`approve-all:${exp.id}`)
              }
              onClick={() => void model.approveAll(exp)}
            >
              {trans.__('Approve all')}
            </button>
          </div>
          <ul className="jp-ResearchAgent-cards">
            {exp.proposals.map(p => (
              <ProposalCard key={p.id} ctx={ctx} exp={exp} proposal={p} />
            ))}
          </ul>
        </section>
      )}
      {exp.status !== 'proposing' && <SteeringForm ctx={ctx} exp={exp} />}
      <AutopilotSection ctx={ctx} exp={exp} />
      <RunList ctx={ctx} exp={exp} />
      <ComparisonView ctx={ctx} exp={exp} />
    </article>
  );
}
