// The one way the console talks to the node: JSON in and out, the bearer token on every call, and
// every failure turned into an ApiError whose message is the problem's `detail`
// (application/problem+json), so a screen shows what the node said rather than a blank page.

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string = '',
    readonly field: string = '',
    readonly requestId: string = '',
    readonly retryAfter: string = '',
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query))
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const q = params.toString();
  return q ? `${path}?${q}` : path;
}

async function problemOf(r: Response): Promise<ApiError> {
  const type = r.headers.get('content-type') ?? '';
  const retryAfter = r.headers.get('retry-after') ?? '';
  if (type.includes('json')) {
    try {
      const p = await r.json();
      const detail = typeof p.detail === 'string' && p.detail ? p.detail : p.title || `HTTP ${r.status}`;
      return new ApiError(detail, r.status, p.type ?? '', p.field ?? '', p.request_id ?? '', retryAfter);
    } catch {
      // fall through: a body that is not JSON after all
    }
  }
  return new ApiError(`the node answered ${r.status} ${r.statusText}`.trim(), r.status, '', '', '', retryAfter);
}

export async function call<T>(
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const h: Record<string, string> = { Accept: 'application/json', Authorization: `Bearer ${token}`, ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let r: Response;
  try {
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError('the node could not be reached; check the connection and try again', 0);
  }
  if (!r.ok) throw await problemOf(r);
  if (r.status === 204) return undefined as T;
  try {
    return (await r.json()) as T;
  } catch {
    throw new ApiError('the node sent an answer that is not JSON', r.status);
  }
}

// A key for one write, kept by the caller so a retry of the same write sends the same key.
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}
