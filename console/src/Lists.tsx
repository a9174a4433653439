// The verification queue by priority, and the audit log (QA leads).
import { useState } from 'react';
import type { FormEvent } from 'react';
import { withQuery } from './api';
import { Card, ErrorBox, Loading, go, link, useApi, useLoad, when } from './common';
import type { AuditRecord, Page, ScheduledVerification } from './types';

const PRIORITY_RANK: Record<string, number> = { high: 0, normal: 1 };

export function ScheduleScreen({ priority }: { priority: string }) {
  const api = useApi();
  const { data, error, loading, reload } = useLoad(
    () => api<{ items: ScheduledVerification[] }>('GET', withQuery('/v1/verification-schedule', { priority, limit: 200 })),
    [priority],
  );
  // High first, then the oldest waiting first within a priority.
  const items = (data?.items ?? []).slice().sort((a, b) =>
    (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) ||
    String(a.created_at).localeCompare(String(b.created_at)));
  return (
    <Card title="Verification queue" actions={<button type="button" className="secondary" onClick={reload}>Refresh</button>}>
      <nav className="tabs" aria-label="Priority">
        {['', 'high', 'normal'].map((p) => (
          <a key={p} href={link(`schedule${p ? `?priority=${p}` : ''}`)} className={p === priority ? 'tab active' : 'tab'}>
            {p || 'all'}
          </a>
        ))}
      </nav>
      {loading && <Loading what="queue" />}
      <ErrorBox error={error} />
      {data && items.length === 0 && <p className="muted">Nothing is waiting for verification.</p>}
      <ul className="list">
        {items.map((v) => (
          <li key={v.id} className="list-item" data-speaker={v.speaker_id}>
            <div>
              <span className={`badge priority-${v.priority}`}>{v.priority}</span>{' '}
              <a href={link(`speakers/${encodeURIComponent(v.speaker_id)}`)}>{v.speaker_id}</a>{' '}
              <span className="small muted">{v.status} · {when(v.created_at)}</span>
              <div className="small">{v.reason}</div>
            </div>
            {v.status === 'scheduled' && (
              <button type="button" onClick={() => go('verify', { speaker: v.speaker_id })}>Verify</button>
            )}
          </li>
        ))}
      </ul>
    </Card>
  );
}

// An audit record's detail is a JSON object of its action's own fields: shown as "name: value".
function describeDetail(detail: unknown): string {
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return JSON.stringify(detail);
  return Object.entries(detail as Record<string, unknown>)
    .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' · ');
}

export function AuditScreen({ query }: { query: URLSearchParams }) {
  const api = useApi();
  const [actor, setActor] = useState(query.get('actor') ?? '');
  const [action, setAction] = useState(query.get('action') ?? '');
  const filters = { actor: query.get('actor') ?? '', action: query.get('action') ?? '', cursor: query.get('cursor') ?? '' };
  const { data, error, loading } = useLoad(
    () => api<Page<AuditRecord>>('GET', withQuery('/v1/audit', { ...filters, limit: 50 })),
    [filters.actor, filters.action, filters.cursor],
  );
  const search = (e: FormEvent) => {
    e.preventDefault();
    go('audit', { actor: actor.trim(), action: action.trim() });
  };
  return (
    <Card title="Audit log">
      <form className="form row" onSubmit={search}>
        <label>Actor<input name="actor" value={actor} onChange={(e) => setActor(e.target.value)} placeholder="lead-1" /></label>
        <label>Action<input name="action" value={action} onChange={(e) => setAction(e.target.value)} placeholder="bucket.pin" /></label>
        <div className="buttons"><button type="submit">Filter</button></div>
      </form>
      {loading && <Loading what="audit log" />}
      <ErrorBox error={error} />
      {data && data.items.length === 0 && <p className="muted">No audit records match.</p>}
      <ul className="list">
        {data?.items.map((r) => (
          <li key={r.id} className="list-item audit" data-action={r.action}>
            <div>
              <strong>{r.action}</strong> <span className="small muted">{when(r.at)}</span>
              <div className="small">{r.actor} ({r.actor_kind}) → {r.target || '—'}{r.peer ? ` from ${r.peer}` : ''}</div>
              {r.detail != null && <div className="small detail">{describeDetail(r.detail)}</div>}
            </div>
          </li>
        ))}
      </ul>
      {data?.next_cursor != null && (
        <button type="button" className="secondary" onClick={() => go('audit', { ...filters, cursor: String(data.next_cursor) })}>Older</button>
      )}
    </Card>
  );
}
