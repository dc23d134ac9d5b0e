/**
 * An exploration's autopilot: off until the researcher starts it with a budget; while on,
 * the round, the budget spent and a Stop button; afterwards why it stopped; the lineage.
 */
import * as React from 'react';

import { ALL_KINDS, IAutopilotDraft } from './autopilotmodel';
import { formatSeconds, IViewContext } from './context';
import { LineageTree } from './lineage';
import { IAutopilotState, IExploration } from './tokens';

function NumberField(props: {
  label: string;
  value: string;
  placeholder?: string;
  onChange: (value: string) => void;
}): JSX.Element {
  return (
    <label className="jp-ResearchAgent-field">
      <span>{props.label}</span>
      <input
        className="jp-ResearchAgent-number-input"
        type="number"
        min={1}
        value={props.value}
        placeholder={props.placeholder}
        onChange={e => props.onChange(e.target.value)}
      />
    </label>
  );
}

function AutopilotForm(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const pilot = model.autopilot;
  const draft = pilot.draft(exp.id);
  const withTokens = !!model.status?.model.configured;
  const error = pilot.formError(exp.id);
  const set = (change: Partial<IAutopilotDraft>): void =>
    pilot.setDraft(exp.id, change);
  return (
    <form
      className="jp-ResearchAgent-autopilot-form"
      aria-label={trans.__('Autopilot settings')}
      noValidate
      onSubmit={e => {
        e.preventDefault();
        void pilot.start(exp.id, withTokens);
      }}
    >
      <div className="jp-ResearchAgent-fields">
        <NumberField
          label={trans.__('Rounds')}
          value={draft.rounds}
          onChange={rounds => set({ rounds })}
        />
        <NumberField
          label={trans.__('Run budget')}
          value={draft.budget_runs}
          onChange={budget_runs => set({ budget_runs })}
        />
        <NumberField
          label={trans.__('Minutes')}
          value={draft.budget_minutes}
          onChange={budget_minutes => set({ budget_minutes })}
        />
        {withTokens && (
          <NumberField
            label={trans.__('Token budget')}
            value={draft.budget_tokens}
            placeholder={trans.__('no limit')}
            onChange={budget_tokens => set({ budget_tokens })}
          />
        )}
      </div>
      <fieldset className="jp-ResearchAgent-kinds">
        <legend>{trans.__('Run without a click')}</legend>
        {ALL_KINDS.map(kind => (
          <label key={kind}>
            <input
              type="checkbox"
              checked={draft.allowed_kinds.includes(kind)}
              onChange={() => pilot.toggleKind(exp.id, kind)}
            />
            {kind}
          </label>
        ))}
      </fieldset>
      <p className="jp-ResearchAgent-muted">
        {trans.__(
          'Other kinds of change wait for your approval. Only you can change the budget.'
        )}
      </p>
      {error && (
        <p className="jp-ResearchAgent-error" role="alert">
          {error}
        </p>
      )}
      <button
        type="submit"
        className="jp-ResearchAgent-button jp-mod-accept"
        disabled={model.pending(`autopilot-start:${exp.id}`)}
      >
        {trans.__('Start autopilot')}
      </button>
    </form>
  );
}

function BudgetSpent(props: {
  ctx: IViewContext;
  state: IAutopilotState;
  active: boolean;
}): JSX.Element {
  const { ctx, state, active } = props;
  const { trans } = ctx;
  const settings = state.settings;
  const end = state.ended_at ? Date.parse(state.ended_at) : ctx.model.now;
  const seconds = Math.max(0, (end - Date.parse(state.started_at)) / 1000);
  return (
    <dl className="jp-ResearchAgent-budget" aria-label={trans.__('Budget')}>
      <dt>{trans.__('Round')}</dt>
      <dd aria-label={trans.__('Round')}>
        {trans.__('%1 of %2 rounds done', state.rounds_done, settings.rounds)}
        {active && ` ${trans.__('(round %1 running)', state.round)}`}
      </dd>
      <dt>{trans.__('Runs')}</dt>
      <dd aria-label={trans.__('Runs used')}>
        {trans.__('%1 of %2 used', state.runs_used, settings.budget_runs)}
        <progress
          className="jp-ResearchAgent-meter"
          max={settings.budget_runs}
          value={Math.min(state.runs_used, settings.budget_runs)}
          aria-hidden="true"
        />
      </dd>
      <dt>{trans.__('Time')}</dt>
      <dd>
        {trans.__(
          '%1 of %2 min',
          formatSeconds(seconds),
          String(settings.budget_minutes)
        )}
      </dd>
      {(settings.budget_tokens !== null || state.tokens_used > 0) && (
        <>
          <dt>{trans.__('Tokens')}</dt>
          <dd>
            {settings.budget_tokens === null
              ? trans.__('%1 used', state.tokens_used)
              : trans.__(
                  '%1 of %2 used',
                  state.tokens_used,
                  settings.budget_tokens
                )}
          </dd>
        </>
      )}
    </dl>
  );
}

export function AutopilotSection(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const view = model.autopilot.view(exp.id);
  const state = model.autopilot.state(exp);
  const active = model.autopilot.isActive(exp);
  return (
    <section
      className={`jp-ResearchAgent-section jp-ResearchAgent-autopilot${active ? ' jp-mod-active' : ''}`}
      aria-label={trans.__('Autopilot')}
    >
      <div className="jp-ResearchAgent-section-head">
        <h3 className="jp-ResearchAgent-subheading">{trans.__('Autopilot')}</h3>
        {active && (
          <button
            className="jp-ResearchAgent-button jp-mod-stop"
            disabled={model.pending(`autopilot-stop:${exp.id}`)}
            onClick={() => void model.autopilot.stop(exp.id)}
          >
            {trans.__('Stop autopilot')}
          </button>
        )}
      </div>
      {!state && (
        <p className="jp-ResearchAgent-muted">
          {trans.__(
            'Off: each run waits for your approval. Start it to run rounds within a budget.'
          )}
        </p>
      )}
      {state && <BudgetSpent ctx={ctx} state={state} active={active} />}
      {state && !active && state.stop_reason && (
        <p
          className="jp-ResearchAgent-stop-reason"
          aria-label={trans.__('Stop reason')}
        >
          {trans.__('Stopped: %1', state.stop_reason)}
        </p>
      )}
      {state && state.notes.length > 0 && (
        <ol
          className="jp-ResearchAgent-notes"
          aria-label={trans.__('Autopilot notes')}
          tabIndex={0}
        >
          {state.notes.map((note, index) => (
            <li key={index}>{note}</li>
          ))}
        </ol>
      )}
      {view && view.lineage.children.length > 0 && (
        <LineageTree
          ctx={ctx}
          root={view.lineage}
          metric={exp.comparison.metric}
        />
      )}
      {!active && <AutopilotForm ctx={ctx} exp={exp} />}
    </section>
  );
}
