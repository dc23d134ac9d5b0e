import { TranslationBundle } from '@jupyterlab/translation';

import { ResearchModel } from './model';
import { ApplyMode } from './notebook';
import { IExploration, IOutput, Origin, RunStatus } from './tokens';

/** Where an exploration (or an autopilot) points: a notebook and a cell in it. */
export interface ICellRef {
  notebook_path: string;
  cell_id: string;
}

/**
 * What the views get: the model to read and act on, and the few notebook operations
 * (which need the notebook widget, not the model).
 */
export interface IViewContext {
  model: ResearchModel;
  trans: TranslationBundle;
  /** Select the exploration's cell in its notebook and scroll to it. */
  reveal(exp: IExploration): void;
  /** Put code into the exploration's notebook, replacing its cell or below it. */
  apply(exp: IExploration, code: string, mode: ApplyMode): void;
  /** The error output the exploration's cell shows now, if any. */
  errorOf(exp: IExploration): IOutput | null;
  /** "Cell 3" for the cell's current position, or null when it is gone (or not open). */
  cellLabel(where: ICellRef): string | null;
}

export function originLabel(origin: Origin, trans: TranslationBundle): string {
  switch (origin) {
    case 'llm':
      return trans.__('model');
    case 'researcher':
      return trans.__('researcher');
    default:
      return trans.__('offline');
  }
}

export function runStatusLabel(
  status: RunStatus,
  trans: TranslationBundle
): string {
  const labels: { [key in RunStatus]: string } = {
    queued: trans.__('queued'),
    starting: trans.__('starting'),
    running: trans.__('running'),
    succeeded: trans.__('succeeded'),
    failed: trans.__('failed'),
    timed_out: trans.__('timed out'),
    cancelled: trans.__('cancelled'),
    interrupted: trans.__('interrupted')
  };
  return labels[status] ?? status;
}

/** A number short enough for a table cell: 4 significant digits. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '—';
  }
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '—';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}
