/**
 * The panel's state: status, the current notebook's explorations, run outputs and the
 * researcher's drafts. Views render it and call its methods; they keep nothing of their own.
 *
 * The REST API is the source of truth. Engine events on the server's event bus say what
 * changed and the model refetches that resource (debounced); when no events arrive while
 * something is active, it polls with backoff, and never while the panel is hidden.
 */
import { Event } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';
import { AutopilotModel } from './autopilotmodel';
import { ResearchAgentAPIError } from './request';
import {
  ENGINE_EVENT_SCHEMA,
  ICell,
  ICreateExploration,
  IEngineEvent,
  IExploration,
  IMetricSpec,
  IProposal,
  IRunDetail,
  IStatus,
  TERMINAL_RUN_STATES
} from './tokens';
import { IMetricChoice, UiState } from './uistate';

/** The open notebook's current cells (unsaved edits included) and kernel. */
export interface INotebookSnapshot {
  cells: ICell[];
  kernel_name: string | null;
}

export interface IModelOptions {
  /** The server's event bus; null when live events are not available. */
  events?: Event.IManager | null;
  /** Reads a notebook that is open in the browser, by path. */
  snapshot?: (path: string) => INotebookSnapshot | null;
}

const REFETCH_DELAY_MS = 150;
const STATUS_KEY = 'status';
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 15000;
/** After an event, trust events for this long before polling again. */
const EVENT_QUIET_MS = 4000;

/** An exploration's metric as the researcher would type it: `name` or `name=expression`. */
export function metricChoiceOf(spec: IMetricSpec | null): IMetricChoice {
  if (!spec) {
    return { text: '', direction: null };
  }
  const text = spec.expression ? `${spec.name}=${spec.expression}` : spec.name;
  return { text, direction: spec.direction };
}

/** The `metric` and `direction` fields of a create request. */
export function metricRequest(
  choice: IMetricChoice
): Pick<ICreateExploration, 'metric' | 'direction'> {
  const text = choice.text.trim();
  return { metric: text || null, direction: choice.direction };
}

/** Something still changes: proposing, runs not ended (the autopilot counts separately). */
export function isActive(exp: IExploration): boolean {
  if (exp.status === 'proposing' || exp.status === 'running') {
    return true;
  }
  const runs = exp.baseline ? [exp.baseline, ...exp.runs] : exp.runs;
  return runs.some(run => !TERMINAL_RUN_STATES.has(run.status));
}

export class ResearchModel {
  constructor(options: IModelOptions = {}) {
    this._snapshot = options.snapshot ?? (() => null);
    this.ui = new UiState(() => this._emit());
    this.autopilot = new AutopilotModel({
      emit: () => this._emit(),
      act: (key, fn) => this._act(key, fn),
      refetch: id => this._refetch(id)
    });
    if (options.events) {
      options.events.stream.connect(this._onEvent, this);
    }
  }

  readonly ui: UiState;
  readonly autopilot: AutopilotModel;

  get changed(): ISignal<this, void> {
    return this._changed;
  }
  get status(): IStatus | null {
    return this._status;
  }
  /** Why the server cannot be used (unreachable, extension missing), or null. */
  get serverError(): string | null {
    return this._serverError;
  }
  get notebookPath(): string | null {
    return this._path;
  }
  /** Explorations of the current notebook, newest first. */
  get explorations(): readonly IExploration[] {
    return this._explorations;
  }
  get selected(): IExploration | null {
    return (
      this._explorations.find(e => e.id === this._selectedId) ??
      this._explorations[0] ??
      null
    );
  }
  get loading(): boolean {
    return this._loading;
  }
  runDetail(runId: string): IRunDetail | undefined {
    return this._runDetails.get(runId);
  }
  /** Milliseconds since the epoch, ticking each second while runs are live. */
  get now(): number {
    return this._now;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The panel is shown or hidden: polling and clocks only run while it is shown. */
  setVisible(visible: boolean): void {
    this._visible = visible;
    if (visible) {
      void this.refresh();
    } else {
      this._stopTimers();
    }
  }

  /** Follow another notebook (null: none is active). */
  setNotebook(path: string | null): void {
    if (path === this._path) {
      return;
    }
    this._path = path;
    this._explorations = [];
    this._selectedId = null;
    this._emit();
    void this.refresh();
  }

  select(explorationId: string): void {
    this._selectedId = explorationId;
    this._emit();
  }

  /** Fetch the status and the current notebook's explorations. */
  async refresh(): Promise<void> {
    const path = this._path;
    this._loading = true;
    this._emit();
    try {
      this._status = await api.getStatus();
      this._serverError = null;
      const list = path ? await api.listExplorations(path) : [];
      if (path === this._path) {
        // An exploration created while the list was on its way stays shown.
        const ids = new Set(list.map(e => e.id));
        const fresh = this._explorations.filter(
          e => !ids.has(e.id) && e.id === this._selectedId
        );
        this._explorations = [...fresh, ...list];
        list.forEach(exp => this.autopilot.track(exp));
      }
      await this.autopilot.fetchRunning();
    } catch (error) {
      this._serverError = messageOf(error);
    } finally {
      this._loading = false;
      this._emit();
      this._schedule();
    }
  }

  // ---------------------------------------------------------------- actions

  /** Start an exploration; it becomes the selected one. */
  async create(request: ICreateExploration): Promise<IExploration | null> {
    return this._act('create', async () => {
      const exp = await api.createExploration(request);
      if (exp.notebook_path === this._path) {
        this._upsert(exp);
      }
      this._selectedId = exp.id;
      return exp;
    });
  }

  /** The metric for the exploration's next proposals: as typed, else its own. */
  metricChoice(exp: IExploration): IMetricChoice {
    return this.ui.metricDraft(exp.id) ?? metricChoiceOf(exp.metric);
  }

  /** The researcher sets the metric in the panel; it also becomes the notebook's choice. */
  setMetricChoice(exp: IExploration, choice: IMetricChoice): void {
    this._notebookMetric.set(exp.notebook_path, choice);
    this.ui.setMetricDraft(exp.id, choice);
  }

  /**
   * The metric last chosen in the panel for a notebook, as request fields, so explorations
   * started from the cell menu compare the same thing; empty when none was chosen.
   */
  notebookMetric(
    path: string
  ): Pick<ICreateExploration, 'metric' | 'direction'> {
    const choice = this._notebookMetric.get(path);
    return choice ? metricRequest(choice) : {};
  }

  /**
   * A new exploration of the same cell, steered by the researcher's instructions, with the
   * chosen metric and the original's sweep and seeds.
   */
  async proposeMore(exp: IExploration): Promise<void> {
    const snapshot = this._snapshot(exp.notebook_path);
    const choice = this.metricChoice(exp);
    const created = await this.create({
      notebook_path: exp.notebook_path,
      cell_id: exp.cell_id,
      kind: exp.kind,
      instructions: this.ui.instructions(exp.id).trim(),
      ...metricRequest(choice),
      sweep: exp.sweep,
      seeds: exp.seeds,
      cells: snapshot?.cells ?? null,
      kernel_name: snapshot?.kernel_name ?? null
    });
    if (created) {
      this._notebookMetric.set(exp.notebook_path, choice);
      this.ui.setInstructions(exp.id, '');
    }
  }

  async approve(proposal: IProposal): Promise<void> {
    await this._act(`approve:${proposal.id}`, () =>
      api.approveProposal(proposal.id, proposal.code_sha256)
    );
    await this._refetch(proposal.exploration_id);
  }

  async approveAll(exp: IExploration): Promise<void> {
    const waiting = exp.proposals.filter(
      p => p.status === 'proposed' && p.approvable
    );
    await this._act(`approve-all:${exp.id}`, async () => {
      for (const p of waiting) {
        await api.approveProposal(p.id, p.code_sha256);
      }
    });
    await this._refetch(exp.id);
  }

  async reject(proposal: IProposal): Promise<void> {
    await this._act(`reject:${proposal.id}`, () =>
      api.rejectProposal(proposal.id)
    );
    await this._refetch(proposal.exploration_id);
  }

  /** Save the edited code; the server clears the approval, so it must be approved again. */
  async saveEdit(proposal: IProposal): Promise<void> {
    const code = this.ui.editDraft(proposal.id);
    if (code === undefined) {
      return;
    }
    const saved = await this._act(`edit:${proposal.id}`, () =>
      api.editProposal(proposal.id, { code })
    );
    if (saved) {
      this.ui.closeEdit(proposal.id);
    }
    await this._refetch(proposal.exploration_id);
  }

  async addOwn(exp: IExploration): Promise<void> {
    const code = this.ui.ownDraft(exp.id);
    if (!code || !code.trim()) {
      return;
    }
    const added = await this._act(`add:${exp.id}`, () =>
      api.addProposal(exp.id, { code })
    );
    if (added) {
      this.ui.closeOwn(exp.id);
    }
    await this._refetch(exp.id);
  }

  async cancelRun(explorationId: string, runId: string): Promise<void> {
    await this._act(`cancel:${runId}`, () => api.cancelRun(runId));
    await this._refetch(explorationId);
  }

  /** Show or hide a run's captured output (fetched on demand). */
  async toggleOutput(runId: string): Promise<void> {
    if (this.ui.toggleRunOutput(runId)) {
      await this._fetchRun(runId);
    }
  }

  /** True while a request for this action key is in flight. */
  pending(key: string): boolean {
    return this._pending.has(key);
  }
  /** The last failed action's message, shown until the next action. */
  get actionError(): string | null {
    return this._actionError;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._stopTimers();
    this._refetchTimers.forEach(timer => clearTimeout(timer));
    this.autopilot.dispose();
    Signal.clearData(this);
  }

  // ---------------------------------------------------------------- internals

  private async _act<T>(key: string, fn: () => Promise<T>): Promise<T | null> {
    this._pending.add(key);
    this._actionError = null;
    this._emit();
    try {
      return await fn();
    } catch (error) {
      this._actionError = messageOf(error);
      return null;
    } finally {
      this._pending.delete(key);
      this._pollDelay = POLL_MIN_MS;
      this._emit();
      this._schedule();
    }
  }

  private _onEvent(_: unknown, emission: Event.Emission): void {
    if (emission.schema_id !== ENGINE_EVENT_SCHEMA) {
      return;
    }
    const event = emission as unknown as IEngineEvent;
    // Autopilots of every notebook are listed, so their events count from anywhere.
    this.autopilot.onEvent(event);
    if (event.notebook_path !== this._path) {
      return;
    }
    this._lastEvent = Date.now();
    this._debouncedRefetch(event.exploration_id);
    if (event.type === 'run') {
      this._debouncedRefetch(STATUS_KEY);
    }
    if (
      (event.type === 'run' || event.type === 'run_output') &&
      this.ui.runOutputShown(event.id)
    ) {
      this._debouncedRefetch(`run:${event.id}`);
    }
  }

  private _debouncedRefetch(key: string): void {
    if (this._refetchTimers.has(key)) {
      return;
    }
    const timer = setTimeout(() => {
      this._refetchTimers.delete(key);
      if (key === STATUS_KEY) {
        void this._fetchStatus();
      } else if (key.startsWith('run:')) {
        void this._fetchRun(key.slice(4));
      } else {
        void this._refetch(key);
      }
    }, REFETCH_DELAY_MS);
    this._refetchTimers.set(key, timer);
  }

  private async _refetch(explorationId: string): Promise<boolean> {
    try {
      const exp = await api.getExploration(explorationId);
      this._serverError = null;
      const before = this._explorations.find(e => e.id === exp.id);
      const changed = !before || before.updated_at !== exp.updated_at;
      if (exp.notebook_path === this._path) {
        this._upsert(exp);
      }
      return changed;
    } catch (error) {
      if (!(error instanceof ResearchAgentAPIError && error.status === 404)) {
        this._serverError = messageOf(error);
      }
      return false;
    } finally {
      this._emit();
      this._schedule();
    }
  }

  /** The side-kernel pool's counts change with every run. */
  private async _fetchStatus(): Promise<void> {
    try {
      this._status = await api.getStatus();
    } catch (error) {
      this._serverError = messageOf(error);
    }
    this._emit();
  }

  private async _fetchRun(runId: string): Promise<void> {
    try {
      this._runDetails.set(runId, await api.getRun(runId));
    } catch (error) {
      this._actionError = messageOf(error);
    }
    this._emit();
  }

  private _upsert(exp: IExploration): void {
    this.autopilot.track(exp);
    const others = this._explorations.filter(e => e.id !== exp.id);
    this._explorations = [exp, ...others].sort((a, b) =>
      b.created_at.localeCompare(a.created_at)
    );
  }

  /** Clock and fallback polling, only while shown and something is live. */
  private _schedule(): void {
    this._stopTimers();
    if (this._disposed || !this._visible) {
      return;
    }
    const active = this._explorations.filter(
      exp => isActive(exp) || this.autopilot.isActive(exp)
    );
    const elsewhere = this.autopilot.running.length > 0;
    if (active.length === 0 && !elsewhere && !this._serverError) {
      this._pollDelay = POLL_MIN_MS;
      return;
    }
    if (active.length > 0) {
      this._clock = setInterval(() => {
        this._now = Date.now();
        this._emit();
      }, 1000);
    }
    this._poll = setTimeout(async () => {
      this._poll = null;
      if (this._serverError) {
        await this.refresh();
      } else if (Date.now() - this._lastEvent > EVENT_QUIET_MS) {
        const results = await Promise.all([
          ...active.map(exp => this._refetch(exp.id)),
          ...(elsewhere ? [this.autopilot.fetchRunning()] : [])
        ]);
        this._pollDelay = results.some(Boolean)
          ? POLL_MIN_MS
          : Math.min(this._pollDelay * 1.5, POLL_MAX_MS);
      }
      this._schedule();
    }, this._pollDelay);
  }

  private _stopTimers(): void {
    if (this._poll !== null) {
      clearTimeout(this._poll);
      this._poll = null;
    }
    if (this._clock !== null) {
      clearInterval(this._clock);
      this._clock = null;
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _snapshot: (path: string) => INotebookSnapshot | null;
  private _status: IStatus | null = null;
  private _serverError: string | null = null;
  private _path: string | null = null;
  private _explorations: IExploration[] = [];
  private _selectedId: string | null = null;
  private _runDetails = new Map<string, IRunDetail>();
  private _notebookMetric = new Map<string, IMetricChoice>();
  private _pending = new Set<string>();
  private _actionError: string | null = null;
  private _loading = false;
  private _visible = false;
  private _disposed = false;
  private _now = Date.now();
  private _lastEvent = 0;
  private _pollDelay = POLL_MIN_MS;
  private _poll: ReturnType<typeof setTimeout> | null = null;
  private _clock: ReturnType<typeof setInterval> | null = null;
  private _refetchTimers = new Map<string, ReturnType<typeof setTimeout>>();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
