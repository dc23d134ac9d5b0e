/**
 * The researcher's unsent input and view choices: drafts, open editors, sort order.
 *
 * It lives beside the server state in the model, so views stay stateless and a
 * re-render (or a switch of notebook and back) keeps what was typed.
 */
import { Direction } from './tokens';

export type SortKey = 'label' | 'metric' | 'delta' | 'pct_change';

export interface ISort {
  key: SortKey;
  descending: boolean;
}

/** The metric a new exploration should compare: `name` or `name=expression`, and its direction. */
export interface IMetricChoice {
  text: string;
  /** null: let the engine infer it from the name. */
  direction: Direction | null;
}

export class UiState {
  constructor(private readonly _emit: () => void) {}

  // ---------------------------------------------------------------- editing a proposal

  /** The code being edited, or undefined when the proposal's editor is closed. */
  editDraft(proposalId: string): string | undefined {
    return this._edits.get(proposalId);
  }
  openEdit(proposalId: string, code: string): void {
    this._edits.set(proposalId, code);
    this._emit();
  }
  setEditDraft(proposalId: string, code: string): void {
    this._edits.set(proposalId, code);
    this._emit();
  }
  closeEdit(proposalId: string): void {
    this._edits.delete(proposalId);
    this._emit();
  }

  // ---------------------------------------------------------------- per exploration

  instructions(explorationId: string): string {
    return this._instructions.get(explorationId) ?? '';
  }
  setInstructions(explorationId: string, text: string): void {
    this._instructions.set(explorationId, text);
    this._emit();
  }

  /** The metric typed for the next proposals, or undefined while untouched. */
  metricDraft(explorationId: string): IMetricChoice | undefined {
    return this._metric.get(explorationId);
  }
  setMetricDraft(explorationId: string, choice: IMetricChoice): void {
    this._metric.set(explorationId, choice);
    this._emit();
  }

  /** The researcher's own variation being written, or undefined when closed. */
  ownDraft(explorationId: string): string | undefined {
    return this._own.get(explorationId);
  }
  openOwn(explorationId: string, code: string): void {
    this._own.set(explorationId, code);
    this._emit();
  }
  setOwnDraft(explorationId: string, code: string): void {
    this._own.set(explorationId, code);
    this._emit();
  }
  closeOwn(explorationId: string): void {
    this._own.delete(explorationId);
    this._emit();
  }

  // ---------------------------------------------------------------- runs and comparison

  runOutputShown(runId: string): boolean {
    return this._outputs.has(runId);
  }
  /** Returns true when the output is now shown. */
  toggleRunOutput(runId: string): boolean {
    const shown = !this._outputs.has(runId);
    if (shown) {
      this._outputs.add(runId);
    } else {
      this._outputs.delete(runId);
    }
    this._emit();
    return shown;
  }

  get sort(): ISort | null {
    return this._sort;
  }
  /** Sort by a column; clicking the same column again flips the order. */
  sortBy(key: SortKey): void {
    const same = this._sort?.key === key;
    this._sort = { key, descending: same ? !this._sort!.descending : false };
    this._emit();
  }

  /** The metric the chart shows for an exploration (null: the comparison's own). */
  chartMetric(explorationId: string): string | null {
    return this._chartMetric.get(explorationId) ?? null;
  }
  setChartMetric(explorationId: string, metric: string): void {
    this._chartMetric.set(explorationId, metric);
    this._emit();
  }

  private _edits = new Map<string, string>();
  private _instructions = new Map<string, string>();
  private _own = new Map<string, string>();
  private _metric = new Map<string, IMetricChoice>();
  private _outputs = new Set<string>();
  private _sort: ISort | null = null;
  private _chartMetric = new Map<string, string>();
}
