/**
 * The autopilot's part of the panel state: each exploration's autopilot view (state and
 * lineage tree), the autopilots running across notebooks, and the researcher's unsent
 * settings. The research model owns it and forwards events; views only read and call it.
 */
import * as api from './api';
import {
  IAutopilotSettings,
  IAutopilotState,
  IAutopilotSummary,
  IAutopilotView,
  IEngineEvent,
  IExploration,
  ProposalKind
} from './tokens';

/** What the autopilot state needs from the research model. */
export interface IAutopilotHost {
  /** Tell the views that something changed. */
  emit(): void;
  /** Run an action: marks `key` pending and shows a failure as the action error. */
  act<T>(key: string, fn: () => Promise<T>): Promise<T | null>;
  /** Refetch an exploration of the current notebook. */
  refetch(explorationId: string): Promise<unknown>;
}

/** The settings form as typed: numbers stay text until Start, so typing is never fought. */
export interface IAutopilotDraft {
  rounds: string;
  budget_runs: string;
  budget_minutes: string;
  budget_tokens: string;
  allowed_kinds: ProposalKind[];
}

export const ALL_KINDS: readonly ProposalKind[] = [
  'parameter',
  'seed',
  'ablation',
  'fix',
  'other'
];

/** The server's defaults (AutopilotSettings in core/models.py). */
const DEFAULT_DRAFT: IAutopilotDraft = {
  rounds: '3',
  budget_runs: '20',
  budget_minutes: '60',
  budget_tokens: '',
  allowed_kinds: ['parameter', 'seed']
};
const DEFAULT_PER_ROUND = 3;
const DEFAULT_SEEDS_FOR_PROMISING = 1;
const REFETCH_DELAY_MS = 150;
const RUNNING_KEY = 'running';

/** Read the form into settings, or say which field is wrong. */
export function parseDraft(
  draft: IAutopilotDraft,
  withTokens: boolean
): IAutopilotSettings | string {
  const whole = (text: string, min: number, max: number): number | null => {
    const value = Number(text.trim());
    return Number.isInteger(value) && value >= min && value <= max
      ? value
      : null;
  };
  const rounds = whole(draft.rounds, 1, 50);
  if (rounds === null) {
    return 'Rounds must be a whole number from 1 to 50.';
  }
  const runs = whole(draft.budget_runs, 1, 10000);
  if (runs === null) {
    return 'The run budget must be a whole number from 1 to 10000.';
  }
  const minutes = Number(draft.budget_minutes.trim());
  if (!(minutes > 0 && minutes <= 7 * 24 * 60)) {
    return 'The time budget must be more than 0 and at most 10080 minutes.';
  }
  let tokens: number | null = null;
  if (withTokens && draft.budget_tokens.trim()) {
    tokens = whole(draft.budget_tokens, 1, Number.MAX_SAFE_INTEGER);
    if (tokens === null) {
      return 'The token budget must be a whole number of at least 1, or empty.';
    }
  }
  if (draft.allowed_kinds.length === 0) {
    return 'Allow at least one kind of change to run without a click.';
  }
  return {
    rounds,
    budget_runs: runs,
    budget_minutes: minutes,
    budget_tokens: tokens,
    allowed_kinds: ALL_KINDS.filter(k => draft.allowed_kinds.includes(k)),
    per_round: DEFAULT_PER_ROUND,
    seeds_for_promising: DEFAULT_SEEDS_FOR_PROMISING
  };
}

export class AutopilotModel {
  constructor(private readonly _host: IAutopilotHost) {}

  /** The exploration's autopilot view, once fetched. */
  view(explorationId: string): IAutopilotView | undefined {
    return this._views.get(explorationId);
  }

  /** Autopilots running in any notebook, oldest first. */
  get running(): readonly IAutopilotSummary[] {
    return this._running;
  }

  /**
   * The exploration's autopilot state. A view fetched for this very exploration wins: the
   * server marks there an autopilot whose engine ended without stopping it.
   */
  state(exp: IExploration): IAutopilotState | null {
    const view = this._current(exp);
    return view ? view.state : (exp.autopilot ?? null);
  }

  /** True while the exploration's autopilot goes on. */
  isActive(exp: IExploration): boolean {
    const view = this._current(exp);
    if (view) {
      return view.active;
    }
    return !!exp.autopilot && !exp.autopilot.stopped;
  }

  draft(explorationId: string): IAutopilotDraft {
    return this._drafts.get(explorationId) ?? DEFAULT_DRAFT;
  }
  /** Why the form's settings were refused at the last Start, or null. */
  formError(explorationId: string): string | null {
    return this._formErrors.get(explorationId) ?? null;
  }
  setDraft(explorationId: string, change: Partial<IAutopilotDraft>): void {
    this._formErrors.delete(explorationId);
    this._drafts.set(explorationId, {
      ...this.draft(explorationId),
      ...change
    });
    this._host.emit();
  }
  toggleKind(explorationId: string, kind: ProposalKind): void {
    const kinds = this.draft(explorationId).allowed_kinds;
    this.setDraft(explorationId, {
      allowed_kinds: kinds.includes(kind)
        ? kinds.filter(k => k !== kind)
        : [...kinds, kind]
    });
  }

  /** Start with the form's settings: the researcher's consent and budget. */
  async start(explorationId: string, withTokens: boolean): Promise<void> {
    const settings = parseDraft(this.draft(explorationId), withTokens);
    if (typeof settings === 'string') {
      this._formErrors.set(explorationId, settings);
      this._host.emit();
      return;
    }
    this._formErrors.delete(explorationId);
    const view = await this._host.act(`autopilot-start:${explorationId}`, () =>
      api.startAutopilot(explorationId, settings)
    );
    await this._settle(explorationId, view);
  }

  async stop(explorationId: string): Promise<void> {
    const view = await this._host.act(`autopilot-stop:${explorationId}`, () =>
      api.stopAutopilot(explorationId)
    );
    await this._settle(explorationId, view);
  }

  /**
   * Called with every exploration the research model receives: the lineage follows the
   * exploration's proposals and comparison, so it is refetched when those changed.
   */
  track(exp: IExploration): void {
    if (!exp.autopilot) {
      return;
    }
    const stamp = stampOf(exp);
    if (this._stamps.get(exp.id) !== stamp) {
      this._stamps.set(exp.id, stamp);
      this._debounced(exp.id);
    }
  }

  /** An engine event from any notebook: autopilot events change the list across notebooks. */
  onEvent(event: IEngineEvent): void {
    if (event.type === 'autopilot') {
      this._debounced(RUNNING_KEY);
    }
  }

  async fetchRunning(): Promise<void> {
    try {
      this._running = await api.listAutopilots();
    } catch {
      // The research model reports an unreachable server; a stale list is kept meanwhile.
    }
    this._host.emit();
  }

  async fetchView(explorationId: string): Promise<void> {
    const stamp = this._stamps.get(explorationId);
    try {
      const view = await api.getAutopilot(explorationId);
      this._views.set(explorationId, view);
      this._viewStamps.set(explorationId, stamp);
    } catch {
      // Same as above: the exploration's own refetch reports the failure.
    }
    this._host.emit();
  }

  dispose(): void {
    this._timers.forEach(timer => clearTimeout(timer));
    this._timers.clear();
  }

  private async _settle(
    explorationId: string,
    view: IAutopilotView | null
  ): Promise<void> {
    if (view) {
      this._views.set(explorationId, view);
      this._viewStamps.delete(explorationId);
    }
    await Promise.all([this._host.refetch(explorationId), this.fetchRunning()]);
  }

  private _debounced(key: string): void {
    if (this._timers.has(key)) {
      return;
    }
    const timer = setTimeout(() => {
      this._timers.delete(key);
      void (key === RUNNING_KEY ? this.fetchRunning() : this.fetchView(key));
    }, REFETCH_DELAY_MS);
    this._timers.set(key, timer);
  }

  /** The fetched view if nothing changed in the exploration since it was asked for. */
  private _current(exp: IExploration): IAutopilotView | undefined {
    const stamp = this._viewStamps.get(exp.id);
    return stamp !== undefined && stamp === this._stamps.get(exp.id)
      ? this._views.get(exp.id)
      : undefined;
  }

  private _views = new Map<string, IAutopilotView>();
  /** The exploration's stamp when its view was asked for. */
  private _viewStamps = new Map<string, string | undefined>();
  private _stamps = new Map<string, string>();
  private _running: IAutopilotSummary[] = [];
  private _drafts = new Map<string, IAutopilotDraft>();
  private _formErrors = new Map<string, string>();
  private _timers = new Map<string, ReturnType<typeof setTimeout>>();
}

/** What the lineage tree is built from: a change in any of it means refetch. */
function stampOf(exp: IExploration): string {
  return JSON.stringify([
    exp.updated_at,
    exp.autopilot,
    exp.proposals.map(p => [p.id, p.status, p.approved_by ?? null]),
    exp.comparison.rows
  ]);
}
