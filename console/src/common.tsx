// What every screen shares: the signed-in identity, the hash route, loading with errors shown as
// the node's problem detail, and small display helpers.
import { createContext, useCallback, useContext, useEffect, useState } from 'react';
import type { ReactNode } from 'react';
import { ApiError, call } from './api';
import type { Identity } from './token';

export const IdentityContext = createContext<Identity | null>(null);

export function useIdentity(): Identity {
  const who = useContext(IdentityContext);
  if (!who) throw new Error('not signed in');
  return who;
}

export function useApi() {
  const who = useIdentity();
  return useCallback(
    <T,>(method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
      call<T>(who.token, method, path, body, headers),
    [who.token],
  );
}

export interface Route {
  parts: string[];
  query: URLSearchParams;
}

function parseHash(): Route {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?', 2);
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function go(path: string, query: Record<string, string> = {}) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '')).toString();
  window.location.hash = `#/${path}${q ? `?${q}` : ''}`;
}

export function link(path: string): string {
  return `#/${path}`;
}

// Loads with `load` whenever `deps` change; `reload` loads again.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    load().then(
      (d) => { if (live) { setData(d); setLoading(false); } },
      (e) => { if (live) { setError(e); setLoading(false); } },
    );
    return () => { live = false; };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const text = error instanceof Error ? error.message : String(error);
  return (
    <div className="error" role="alert">
      <strong>{e && e.status ? `${e.status}: ` : ''}</strong>{text}
      {e?.field ? <span className="muted"> (field: {e.field})</span> : null}
      {e?.retryAfter ? <span className="muted"> Retry after {e.retryAfter} s.</span> : null}
      {e?.requestId ? <div className="muted small">request {e.requestId}</div> : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <p className="muted" aria-live="polite">Loading {what}…</p>;
}

export function when(ts: string | null | undefined): string {
  return ts ? new Date(ts).toLocaleString() : '—';
}

export function Card({ title, children, actions }: { title?: ReactNode; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      {(title || actions) && (
        <header className="card-head">
          {title && <h2>{title}</h2>}
          {actions}
        </header>
      )}
      {children}
    </section>
  );
}

export function BucketBadge({ bucket }: { bucket: string }) {
  return <span className={`badge bucket-${bucket}`}>{bucket.replace('_', ' ')}</span>;
}

// Dates for <input type="date">: today and n days before, in UTC as the node reads dates.
export function isoDate(offsetDays = 0): string {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}
