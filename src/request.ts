import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** URL namespace of the server extension's REST API. */
export const API_NAMESPACE = 'api/research-agent';

/**
 * An error from the research agent's REST API, with a message fit for the user.
 */
export class ResearchAgentAPIError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly body: unknown = null
  ) {
    super(message);
    this.name = 'ResearchAgentAPIError';
  }

  /** True when the server answered 404 for the namespace itself. */
  get extensionMissing(): boolean {
    return this.status === 404 && this.message === EXTENSION_MISSING;
  }
}

export const EXTENSION_MISSING =
  'The server extension jupyter_research_agent is not installed or not enabled. ' +
  'Install the package in the Python environment that runs Jupyter Server, then restart it.';

/**
 * Call the research agent's REST API: the one HTTP function of the frontend.
 *
 * @param endPoint Path below /api/research-agent, for example 'status'.
 * @param init Fetch options; a JSON body is passed as a string.
 * @param settings Server settings; defaults to the page's settings.
 * @returns The response body parsed as JSON (undefined for an empty body).
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ResearchAgentAPIError(
      `Cannot reach the Jupyter server: ${String(error)}`,
      null
    );
  }

  const text = await response.text();
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }

  if (!response.ok) {
    throw new ResearchAgentAPIError(
      errorMessage(response.status, body),
      response.status,
      body
    );
  }
  return body as T;
}

function errorMessage(status: number, body: unknown): string {
  const message =
    typeof body === 'object' && body !== null && 'message' in body
      ? String((body as { message: unknown }).message)
      : '';
  // Our handlers always answer JSON with a message; a bare 404 means no handler at all.
  if (status === 404 && !message) {
    return EXTENSION_MISSING;
  }
  return message || `Request failed with HTTP ${status}`;
}
