/**
 * Proposal cards: what would change and why, with Approve / Edit / Reject.
 *
 * Every model-written string is a React text child (escaped); nothing here sets HTML.
 */
import * as React from 'react';

import { IViewContext, originLabel } from './context';
import { condense, lineDiff } from './diff';
import { IExploration, IProposal } from './tokens';

export function DiffView(props: {
  before: string;
  after: string;
  label: string;
  noChange: string;
}): JSX.Element {
  const lines = condense(lineDiff(props.before, props.after));
  const changed = lines.some(line => line !== null && line.op !== 'same');
  return (
    <pre className="jp-ResearchAgent-diff" aria-label={props.label}>
      {!changed && (
        <span className="jp-ResearchAgent-diff-note">{props.noChange}</span>
      )}
      {lines.map((line, index) =>
        line === null ? (
          <span key={index} className="jp-ResearchAgent-diff-gap">
            {'⋯\n'}
          </span>
        ) : (
          <span
            key={index}
            className={`jp-ResearchAgent-diff-${line.op}`}
          >{`${line.op === 'add' ? '+' : line.op === 'del' ? '−' : ' '} ${line.text}\n`}</span>
        )
      )}
    </pre>
  );
}

function ProposalEditor(props: {
  ctx: IViewContext;
  proposal: IProposal;
  draft: string;
}): JSX.Element {
  const { ctx, proposal, draft } = props;
  const { model, trans } = ctx;
  return (
    <div className="jp-ResearchAgent-editor">
      <textarea
        className="jp-ResearchAgent-code-input"
        aria-label={trans.__('Code of %1', proposal.title)}
        value={draft}
        rows={Math.min(20, Math.max(4, draft.split('\n').length + 1))}
        spellCheck={false}
        onChange={e => model.ui.setEditDraft(proposal.id, e.target.value)}
      />
      <div className="jp-ResearchAgent-actions">
        <button
          className="jp-ResearchAgent-button jp-mod-accept"
          disabled={model.pending(`edit:${proposal.id}`)}
          onClick={() => void model.saveEdit(proposal)}
        >
          {trans.__('Save')}
        </button>
        <button
          className="jp-ResearchAgent-button"
          onClick={() => model.ui.closeEdit(proposal.id)}
        >
          {trans.__('Cancel edit')}
        </button>
      </div>
    </div>
  );
}

export function ProposalCard(props: {
  ctx: IViewContext;
  exp: IExploration;
  proposal: IProposal;
}): JSX.Element {
  const { ctx, exp, proposal } = props;
  const { model, trans } = ctx;
  const draft = model.ui.editDraft(proposal.id);
  const rejected = proposal.status === 'rejected';
  const approved = proposal.status === 'approved';
  const busy =
    model.pending(`approve:${proposal.id}`) ||
    model.pending(`reject:${proposal.id}`) ||
    model.pending(`approve-all:${exp.id}`);
  return (
    <li
      className={`jp-ResearchAgent-card jp-mod-${proposal.status}`}
      aria-label={proposal.title}
    >
      <div className="jp-ResearchAgent-card-head">
        <span className="jp-ResearchAgent-card-title">{proposal.title}</span>
        <span className="jp-ResearchAgent-badge">{proposal.kind}</span>
        <span className="jp-ResearchAgent-badge">
          {originLabel(proposal.origin, trans)}
        </span>
        <span
          className={`jp-ResearchAgent-badge jp-mod-${proposal.status}`}
          aria-label={trans.__('Status')}
        >
          {proposal.status}
        </span>
      </div>
      {proposal.rationale && (
        <p className="jp-ResearchAgent-rationale">{proposal.rationale}</p>
      )}
      {proposal.verification && (
        <p
          className="jp-ResearchAgent-verification"
          aria-label={trans.__('Verification')}
        >
          {proposal.verification}
        </p>
      )}
      {proposal.approved_by === 'autopilot' && (
        <p className="jp-ResearchAgent-muted">
          {trans.__('Approved by the autopilot within its budget')}
        </p>
      )}
      {proposal.expected_effect && (
        <p className="jp-ResearchAgent-effect">{proposal.expected_effect}</p>
      )}
      {proposal.warnings.length > 0 && (
        <ul
          className="jp-ResearchAgent-warnings"
          aria-label={trans.__('Warnings')}
        >
          {proposal.warnings.map((warning, index) => (
            <li key={index}>{warning}</li>
          ))}
        </ul>
      )}
      {draft === undefined ? (
        <DiffView
          before={exp.cell_source}
          after={proposal.code}
          label={trans.__('Change made by %1', proposal.title)}
          noChange={trans.__('(no change)')}
        />
      ) : (
        <ProposalEditor ctx={ctx} proposal={proposal} draft={draft} />
      )}
      {!rejected && draft === undefined && (
        <div className="jp-ResearchAgent-actions">
          {!approved && (
            <button
              className="jp-ResearchAgent-button jp-mod-accept"
              aria-label={trans.__('Approve %1', proposal.title)}
              title={
                proposal.approvable
                  ? trans.__('Run this code in a side kernel')
                  : trans.__('This proposal cannot be approved as it is')
              }
              disabled={busy || !proposal.approvable}
              onClick={() => void model.approve(proposal)}
            >
              {trans.__('Approve')}
            </button>
          )}
          <button
            className="jp-ResearchAgent-button"
            aria-label={trans.__('Edit %1', proposal.title)}
            onClick={() => model.ui.openEdit(proposal.id, proposal.code)}
          >
            {trans.__('Edit')}
          </button>
          {!approved && (
            <button
              className="jp-ResearchAgent-button jp-mod-warn"
              aria-label={trans.__('Reject %1', proposal.title)}
              disabled={busy}
              onClick={() => void model.reject(proposal)}
            >
              {trans.__('Reject')}
            </button>
          )}
          <button
            className="jp-ResearchAgent-button"
            aria-label={trans.__('Replace cell with %1', proposal.title)}
            onClick={() => ctx.apply(exp, proposal.code, 'replace')}
          >
            {trans.__('Replace cell')}
          </button>
          <button
            className="jp-ResearchAgent-button"
            aria-label={trans.__('Insert %1 below the cell', proposal.title)}
            onClick={() => ctx.apply(exp, proposal.code, 'insert-below')}
          >
            {trans.__('Insert below')}
          </button>
        </div>
      )}
    </li>
  );
}

/** Instructions for the next proposals, and the researcher's own variation. */
export function SteeringForm(props: {
  ctx: IViewContext;
  exp: IExploration;
}): JSX.Element {
  const { ctx, exp } = props;
  const { model, trans } = ctx;
  const own = model.ui.ownDraft(exp.id);
  const instructionsId = `jp-ResearchAgent-instructions-${exp.id}`;
  return (
    <div className="jp-ResearchAgent-steer">
      <label htmlFor={instructionsId}>{trans.__('Instructions')}</label>
      <textarea
        id={instructionsId}
        className="jp-ResearchAgent-text-input"
        rows={2}
        placeholder={trans.__('e.g. try a smaller batch size and fewer epochs')}
        value={model.ui.instructions(exp.id)}
        onChange={e => model.ui.setInstructions(exp.id, e.target.value)}
      />
      <div className="jp-ResearchAgent-actions">
        <button
          className="jp-ResearchAgent-button"
          disabled={model.pending('create')}
          onClick={() => void model.proposeMore(exp)}
        >
          {trans.__('Propose more')}
        </button>
        {own === undefined && (
          <button
            className="jp-ResearchAgent-button"
            onClick={() => model.ui.openOwn(exp.id, exp.cell_source)}
          >
            {trans.__('Add your own variation')}
          </button>
        )}
      </div>
      {own !== undefined && (
        <div className="jp-ResearchAgent-editor">
          <textarea
            className="jp-ResearchAgent-code-input"
            aria-label={trans.__('Your variation of the cell')}
            value={own}
            rows={Math.min(20, Math.max(4, own.split('\n').length + 1))}
            spellCheck={false}
            onChange={e => model.ui.setOwnDraft(exp.id, e.target.value)}
          />
          <div className="jp-ResearchAgent-actions">
            <button
              className="jp-ResearchAgent-button jp-mod-accept"
              disabled={model.pending(`add:${exp.id}`)}
              onClick={() => void model.addOwn(exp)}
            >
              {trans.__('Add variation')}
            </button>
            <button
              className="jp-ResearchAgent-button"
              onClick={() => model.ui.closeOwn(exp.id)}
            >
              {trans.__('Discard')}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
