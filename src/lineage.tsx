/**
 * The lineage of an exploration: the cell as written at the root, each variation under the
 * one it was built on, the best path marked (a class for the eye, a label for screen readers).
 */
import * as React from 'react';

import { formatNumber, IViewContext } from './context';
import { ILineageNode } from './tokens';

function approvalLabel(node: ILineageNode, ctx: IViewContext): string {
  if (node.proposal_id === null) {
    return '';
  }
  if (node.approved_by === 'autopilot') {
    return ctx.trans.__('approved by autopilot');
  }
  // Nothing approved it yet (or the researcher turned it down).
  if (node.status === 'proposed' || node.status === 'rejected') {
    return '';
  }
  return ctx.trans.__('approved by researcher');
}

function valueLabel(node: ILineageNode): string {
  if (node.value === null) {
    return '';
  }
  const spread =
    node.std !== null && node.n > 1 ? ` ± ${formatNumber(node.std)}` : '';
  const count = node.n > 1 ? ` (n=${node.n})` : '';
  return `${formatNumber(node.value)}${spread}${count}`;
}

function LineageItem(props: {
  ctx: IViewContext;
  node: ILineageNode;
  metric: string | null;
}): JSX.Element {
  const { ctx, node, metric } = props;
  const { trans } = ctx;
  const best = node.on_best_path;
  const value = valueLabel(node);
  const approval = approvalLabel(node, ctx);
  return (
    <li
      className={`jp-ResearchAgent-node${best ? ' jp-mod-best-path' : ''}`}
      aria-label={best ? trans.__('%1, best path', node.title) : node.title}
    >
      <div className="jp-ResearchAgent-node-line">
        <span className="jp-ResearchAgent-node-title">{node.title}</span>
        {best && (
          <span className="jp-ResearchAgent-badge jp-mod-best">
            {trans.__('best path')}
          </span>
        )}
        {node.status && (
          <span
            className={`jp-ResearchAgent-badge jp-mod-${node.status}`}
            aria-label={trans.__('Status')}
          >
            {node.status}
          </span>
        )}
      </div>
      <div className="jp-ResearchAgent-node-facts jp-ResearchAgent-muted">
        {node.round !== null && <span>{trans.__('round %1', node.round)}</span>}
        {value && (
          <span aria-label={trans.__('Metric value')}>
            {metric ? `${metric} ${value}` : value}
          </span>
        )}
        {approval && <span>{approval}</span>}
      </div>
      {node.children.length > 0 && (
        <ul className="jp-ResearchAgent-lineage-children">
          {node.children.map(child => (
            <LineageItem
              key={child.proposal_id ?? 'baseline'}
              ctx={ctx}
              node={child}
              metric={metric}
            />
          ))}
        </ul>
      )}
    </li>
  );
}

export function LineageTree(props: {
  ctx: IViewContext;
  root: ILineageNode;
  metric: string | null;
}): JSX.Element {
  const { ctx, root, metric } = props;
  return (
    <div className="jp-ResearchAgent-lineage-box">
      <h4 className="jp-ResearchAgent-subheading">{ctx.trans.__('Lineage')}</h4>
      <ul
        className="jp-ResearchAgent-lineage"
        aria-label={ctx.trans.__('Lineage')}
      >
        <LineageItem ctx={ctx} node={root} metric={metric} />
      </ul>
    </div>
  );
}
