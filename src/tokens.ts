/**
 * Wire types of the research agent's REST API and events.
 *
 * They mirror jupyter_research_agent/core/models.py field for field (the server
 * serialises those pydantic models with `model_dump(mode="json")`); keep both in step.
 */

export type ProposalKind = 'parameter' | 'ablation' | 'seed' | 'fix' | 'other';
export type Origin = 'offline' | 'llm' | 'researcher';
export type ProposalStatus = 'proposed' | 'approved' | 'rejected';
export type RunStatus =
  | 'queued'
  | 'starting'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'cancelled'
  | 'interrupted';
export type StateStrategy =
  'full_replay' | 'sliced_replay' | 'snapshot_prepared' | 'snapshot_live';
export type Direction = 'maximize' | 'minimize';
export type ExplorationKind = 'variations' | 'fix' | 'seeds';
export type ExplorationStatus =
  'proposing' | 'ready' | 'running' | 'done' | 'failed';

/** Run states after which nothing changes any more. */
export const TERMINAL_RUN_STATES: ReadonlySet<RunStatus> = new Set<RunStatus>([
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'interrupted'
]);

/** An nbformat output dict; only its text parts are ever shown. */
export interface IOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: { [mime: string]: unknown };
  ename?: string;
  evalue?: string;
  traceback?: string[];
  [key: string]: unknown;
}

/** One notebook cell as the engine sees it (nbformat v4 shape). */
export interface ICell {
  id: string;
  cell_type: string;
  source: string;
  outputs: IOutput[];
  execution_count: number | null;
  metadata?: { [key: string]: unknown };
}

export interface IProposal {
  id: string;
  exploration_id: string;
  title: string;
  kind: ProposalKind;
  origin: Origin;
  rationale: string;
  expected_effect: string;
  code: string;
  code_sha256: string;
  status: ProposalStatus;
  approved_sha256: string | null;
  overrides: { [name: string]: unknown };
  seed: number | null;
  warnings: string[];
  approvable: boolean;
  round: number;
  parent_id: string | null;
  /** Fixes only: "unverified", then "verified: …" or "still fails: …". */
  verification?: string | null;
  /** null or "researcher" for a click, "autopilot" within its budget. */
  approved_by?: string | null;
  created_at: string;
}

export interface IRunProgress {
  done: number;
  total: number;
  current_cell_id: string | null;
}

export interface IRun {
  id: string;
  exploration_id: string;
  proposal_id: string | null;
  is_baseline: boolean;
  seed: number | null;
  code_sha256: string;
  status: RunStatus;
  reason: string;
  metrics: { [name: string]: number };
  metric_sources: { [name: string]: string };
  state_strategy: StateStrategy | null;
  rebuild_s: number | null;
  duration_s: number | null;
  attempts: number;
  progress: IRunProgress;
  tail: string[];
  error: { [key: string]: unknown } | null;
  kernel_id: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface ICellOutputs {
  cell_id: string;
  outputs: IOutput[];
  truncated: boolean;
}

export interface IRunDetail extends IRun {
  cells: ICellOutputs[];
}

export interface IMetricBinding {
  name: string;
  expression: string;
  cell_id: string | null;
  names: string[];
  source: 'binding' | 'researcher';
}

export interface IMetricSpec {
  name: string;
  direction: Direction | null;
  expression: string | null;
  binding?: IMetricBinding | null;
}

export interface IComparisonRow {
  label: string;
  proposal_id: string | null;
  is_baseline: boolean;
  status: string;
  metrics: { [name: string]: number };
  std: { [name: string]: number };
  n: number;
  delta: number | null;
  pct_change: number | null;
  duration_s: number | null;
  best: boolean;
}

export interface IComparison {
  metric: string | null;
  direction: Direction | null;
  rows: IComparisonRow[];
  best_proposal_id: string | null;
  summary: string;
}

export interface IExploration {
  id: string;
  notebook_path: string;
  cell_id: string;
  kind: ExplorationKind;
  status: ExplorationStatus;
  error: string;
  metric: IMetricSpec | null;
  sweep: string | null;
  instructions: string;
  seeds: number;
  proposer: Origin;
  cell_source: string;
  proposals: IProposal[];
  baseline: IRun | null;
  runs: IRun[];
  comparison: IComparison;
  /** Fix explorations: the condensed error of the target cell and its likely cause. */
  triage?: ITriage | null;
  /** The written reading of the results once every run has ended. */
  interpretation?: string;
  /** A passing note from the model provider, such as "rate limited; retrying in 2 s". */
  status_message?: string;
  created_at: string;
  updated_at: string;
  autopilot?: IAutopilotState | null;
}

export interface ITriage {
  ename?: string;
  evalue?: string;
  category?: string;
  likely_cause?: string;
  cause_source?: string;
  condensed?: string;
  provider_error?: string | null;
  [key: string]: unknown;
}

export interface IAutopilotSettings {
  rounds: number;
  budget_runs: number;
  budget_minutes: number;
  budget_tokens: number | null;
  allowed_kinds: ProposalKind[];
  per_round: number;
  seeds_for_promising: number;
}

export interface IAutopilotState {
  enabled: boolean;
  settings: IAutopilotSettings;
  round: number;
  rounds_done: number;
  runs_used: number;
  tokens_used: number;
  started_at: string;
  ended_at: string | null;
  stopped: boolean;
  stop_reason: string;
  best_path: string[];
  notes: string[];
}

/** One variation in an exploration's tree; the root (no proposal) is the cell as written. */
export interface ILineageNode {
  proposal_id: string | null;
  title: string;
  kind: ProposalKind | null;
  round: number | null;
  status: string;
  /** "autopilot" within its budget, else the researcher (null for a click). */
  approved_by: string | null;
  value: number | null;
  std: number | null;
  n: number;
  on_best_path: boolean;
  children: ILineageNode[];
}

/** `GET /explorations/{id}/autopilot`: its state and the lineage tree. */
export interface IAutopilotView {
  exploration_id: string;
  notebook_path: string;
  cell_id: string;
  active: boolean;
  state: IAutopilotState | null;
  lineage: ILineageNode;
}

/** An active autopilot in the list across notebooks. */
export interface IAutopilotSummary {
  exploration_id: string;
  notebook_path: string;
  cell_id: string;
  exploration_status: ExplorationStatus;
  metric: string | null;
  best_value: number | null;
  state: IAutopilotState;
}

export interface IAutopilotList {
  autopilots: IAutopilotSummary[];
}

// ------------------------------------------------------------------ requests

/** Body of `POST /explorations`; `cells` carries the notebook's unsaved edits. */
export interface ICreateExploration {
  notebook_path: string;
  cell_id: string;
  kind?: ExplorationKind;
  cells?: ICell[] | null;
  kernel_name?: string | null;
  metric?: string | null;
  direction?: Direction | null;
  sweep?: string | null;
  instructions?: string;
  max_proposals?: number;
  seeds?: number;
  offline?: boolean;
}

export interface IApproveProposal {
  code_sha256: string;
}

export interface IEditProposal {
  code: string;
  title?: string | null;
}

export interface IAddProposal {
  code: string;
  title?: string;
  rationale?: string;
}

// ------------------------------------------------------------------ responses

export interface IStatus {
  version: string;
  model: {
    configured: boolean;
    name: string | null;
    base_url_configured: boolean;
  };
  pool: { pool_size: number; busy: number; queued: number; warm: number };
  explorations_active: number;
}

export interface IExplorationList {
  explorations: IExploration[];
}

// ------------------------------------------------------------------ events

/** jupyter_events schema id of engine changes. */
export const ENGINE_EVENT_SCHEMA =
  'https://events.jupyter.org/jupyter_research_agent/engine/v1';

export type EngineEventType =
  'exploration' | 'proposal' | 'run' | 'run_output' | 'autopilot';

/** An engine change: a hint to refetch the REST resource, never the data itself. */
export interface IEngineEvent {
  type: EngineEventType;
  exploration_id: string;
  notebook_path: string;
  id: string;
  status: string;
  data: { [key: string]: unknown };
}
