// What the console reads from a token: who it names, their role, and when it expires. The node
// checks the signature; this only decodes the payload to show it and to hide what the role may
// not do (the node refuses it anyway).

export interface Identity {
  token: string;
  subject: string;
  role: string;        // qa, qa_lead, admin; '' for a service
  serviceId: string;
  expiresAt: number;   // ms since the epoch; 0 when the token has no exp
  clientIds: string[] | null;
}

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

export function readToken(raw: string): Identity {
  const token = raw.trim().replace(/^Bearer\s+/i, '');
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)))
    throw new Error('this is not a JWT (three base64url parts separated by dots)');
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error("the token's payload is not readable JSON");
  }
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : 0;
  const ids = Array.isArray(payload.client_ids) ? payload.client_ids.map(String) : null;
  return {
    token,
    subject: text(payload.sub),
    role: text(payload.role),
    serviceId: text(payload.service_id),
    expiresAt: exp,
    clientIds: ids,
  };
}

export function isLead(who: Identity): boolean {
  return who.role === 'qa_lead' || who.role === 'admin';
}

export function describeExpiry(expiresAt: number, now: number): string {
  if (!expiresAt) return 'no expiry given';
  const left = expiresAt - now;
  const at = new Date(expiresAt).toLocaleString();
  if (left <= 0) return `expired at ${at}`;
  const minutes = Math.floor(left / 60000);
  const span = minutes >= 120 ? `${Math.floor(minutes / 60)} h` : minutes >= 1 ? `${minutes} min` : 'under a minute';
  return `expires at ${at} (in ${span})`;
}
