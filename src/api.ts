/**
 * Typed calls of every REST route of the server extension, all through `requestAPI`.
 */
import { requestAPI } from './request';
import {
  IAddProposal,
  IAutopilotList,
  IAutopilotSettings,
  IAutopilotSummary,
  IAutopilotView,
  ICreateExploration,
  IEditProposal,
  IExploration,
  IExplorationList,
  IProposal,
  IRun,
  IRunDetail,
  IStatus
} from './tokens';

function post(body?: unknown): RequestInit {
  return {
    method: 'POST',
    body: body === undefined ? undefined : JSON.stringify(body)
  };
}

/** Ids come from the server, but they still go into a URL path. */
function seg(id: string): string {
  return encodeURIComponent(id);
}

export function getStatus(): Promise<IStatus> {
  return requestAPI<IStatus>('status');
}

export async function listExplorations(
  notebookPath: string
): Promise<IExploration[]> {
  const query = new URLSearchParams({ notebook_path: notebookPath });
  const list = await requestAPI<IExplorationList>(`explorations?${query}`);
  return list.explorations;
}

export function createExploration(
  body: ICreateExploration
): Promise<IExploration> {
  return requestAPI<IExploration>('explorations', post(body));
}

export function getExploration(id: string): Promise<IExploration> {
  return requestAPI<IExploration>(`explorations/${seg(id)}`);
}

export function addProposal(
  explorationId: string,
  body: IAddProposal
): Promise<IProposal> {
  return requestAPI<IProposal>(
    `explorations/${seg(explorationId)}/proposals`,
    post(body)
  );
}

/** Approve exactly the code the researcher saw: the server refuses a stale hash. */
export function approveProposal(
  id: string,
  codeSha256: string
): Promise<IProposal> {
  return requestAPI<IProposal>(
    `proposals/${seg(id)}/approve`,
    post({ code_sha256: codeSha256 })
  );
}

export function rejectProposal(id: string): Promise<IProposal> {
  return requestAPI<IProposal>(`proposals/${seg(id)}/reject`, post());
}

export function editProposal(
  id: string,
  body: IEditProposal
): Promise<IProposal> {
  return requestAPI<IProposal>(`proposals/${seg(id)}`, {
    method: 'PATCH',
    body: JSON.stringify(body)
  });
}

export function getRun(id: string): Promise<IRunDetail> {
  return requestAPI<IRunDetail>(`runs/${seg(id)}`);
}

export function cancelRun(id: string): Promise<IRun> {
  return requestAPI<IRun>(`runs/${seg(id)}/cancel`, post());
}

/** Put an exploration on autopilot with this budget; 409 while one is active. */
export function startAutopilot(
  explorationId: string,
  settings: IAutopilotSettings
): Promise<IAutopilotView> {
  return requestAPI<IAutopilotView>(
    `explorations/${seg(explorationId)}/autopilot`,
    post(settings)
  );
}

export function getAutopilot(explorationId: string): Promise<IAutopilotView> {
  return requestAPI<IAutopilotView>(
    `explorations/${seg(explorationId)}/autopilot`
  );
}

/** End the autopilot at once: queued and running work is cancelled. */
export function stopAutopilot(explorationId: string): Promise<IAutopilotView> {
  return requestAPI<IAutopilotView>(
    `explorations/${seg(explorationId)}/autopilot`,
    { method: 'DELETE' }
  );
}

/** The active autopilots across notebooks. */
export async function listAutopilots(): Promise<IAutopilotSummary[]> {
  const list = await requestAPI<IAutopilotList>('autopilot');
  return list.autopilots;
}
