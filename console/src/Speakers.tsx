// Speakers by bucket, each with its quality trend; a speaker's page with the larger chart, its
// bucket history and (QA leads) pin and unpin.
import { useState } from 'react';
import type { FormEvent } from 'react';
import { withQuery, newIdempotencyKey } from './api';
import { BucketBadge, Card, ErrorBox, Loading, go, link, useApi, useIdentity, useLoad, when } from './common';
import { isLead } from './token';
import { TrendChart } from './TrendChart';
import { BUCKETS, bucketLabel } from './types';
import type { HistoryEntry, Page, QualitySamples, Speaker } from './types';

function SpeakerTrend({ id, compact, limit }: { id: string; compact: boolean; limit: number }) {
  const api = useApi();
  const { data, error, loading } = useLoad(
    () => api<QualitySamples>('GET', withQuery(`/v1/speakers/${encodeURIComponent(id)}/quality-samples`, { limit })),
    [id, limit],
  );
  if (loading) return <Loading what="trend" />;
  if (error) return <ErrorBox error={error} />;
  return <TrendChart data={data!} compact={compact} />;
}

export function SpeakersScreen({ bucket, cursor }: { bucket: string; cursor: string }) {
  const api = useApi();
  const chosen = BUCKETS.includes(bucket as (typeof BUCKETS)[number]) ? bucket : BUCKETS[0];
  const { data, error, loading } = useLoad(
    () => api<Page<Speaker>>('GET', withQuery('/v1/speakers', { bucket: chosen, limit: 20, cursor })),
    [chosen, cursor],
  );
  return (
    <>
      <nav className="tabs" aria-label="Buckets">
        {BUCKETS.map((b) => (
          <a key={b} href={link(`speakers?bucket=${b}`)} className={b === chosen ? 'tab active' : 'tab'}
             aria-current={b === chosen ? 'page' : undefined}>
            {bucketLabel(b)}
          </a>
        ))}
      </nav>
      {loading && <Loading what="speakers" />}
      <ErrorBox error={error} />
      {data && data.items.length === 0 && <p className="muted">No speakers in {bucketLabel(chosen)}.</p>}
      <div className="grid">
        {data?.items.map((s) => (
          <a key={s.speaker_id} className="card speaker-card" href={link(`speakers/${encodeURIComponent(s.speaker_id)}`)}
             data-speaker={s.speaker_id}>
            <div className="card-head">
              <h2>{s.display_name || s.speaker_id}</h2>
              <BucketBadge bucket={s.bucket} />
            </div>
            <div className="muted small">
              {s.speaker_id} · {s.client_id}{s.pin ? ' · pinned' : ''}
            </div>
            <SpeakerTrend id={s.speaker_id} compact limit={50} />
            <div className="small">
              Window mean {s.window.mean_errors_per_100_words.toFixed(2)} over {s.window.size}/{s.window.capacity} jobs
            </div>
          </a>
        ))}
      </div>
      {data?.next_cursor && (
        <button type="button" onClick={() => go('speakers', { bucket: chosen, cursor: String(data.next_cursor) })}>
          Next page
        </button>
      )}
    </>
  );
}

function PinForm({ speaker, onDone }: { speaker: Speaker; onDone: () => void }) {
  const api = useApi();
  const [bucket, setBucket] = useState(speaker.pin?.bucket ?? speaker.bucket);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // One key per intended change, so a retry after a lost answer is not a second pin.
  const [key, setKey] = useState(newIdempotencyKey);
  const id = encodeURIComponent(speaker.speaker_id);
  const run = async (e: FormEvent, unpin: boolean) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (unpin)
        await api('DELETE', withQuery(`/v1/speakers/${id}/bucket-pin`, { reason }), undefined, { 'Idempotency-Key': key });
      else await api('PUT', `/v1/speakers/${id}/bucket-pin`, { bucket, reason }, { 'Idempotency-Key': key });
      setReason('');
      setKey(newIdempotencyKey());
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="form" onSubmit={(e) => run(e, false)}>
      <label>
        Bucket
        <select value={bucket} onChange={(e) => { setBucket(e.target.value); setKey(newIdempotencyKey()); }}>
          {BUCKETS.map((b) => <option key={b} value={b}>{bucketLabel(b)}</option>)}
        </select>
      </label>
      <label>
        Reason (audited)
        <input value={reason} onChange={(e) => { setReason(e.target.value); setKey(newIdempotencyKey()); }}
               placeholder="why this bucket, for the audit log" />
      </label>
      <div className="buttons">
        <button type="submit" disabled={busy || !reason.trim()}>Pin to {bucketLabel(bucket)}</button>
        {speaker.pin && (
          <button type="button" className="secondary" disabled={busy} onClick={(e) => run(e, true)}>Unpin</button>
        )}
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

export function SpeakerScreen({ id }: { id: string }) {
  const api = useApi();
  const who = useIdentity();
  const path = `/v1/speakers/${encodeURIComponent(id)}`;
  const speaker = useLoad(() => api<Speaker>('GET', path), [id]);
  const history = useLoad(() => api<{ entries: HistoryEntry[] }>('GET', `${path}/bucket-history`), [id]);
  const reload = () => { speaker.reload(); history.reload(); };
  const s = speaker.data;
  return (
    <>
      <p><a href={link(`speakers?bucket=${s?.bucket ?? ''}`)}>← Speakers</a></p>
      {speaker.loading && !s && <Loading what="speaker" />}
      <ErrorBox error={speaker.error} />
      {s && (
        <Card title={<>{s.display_name || s.speaker_id} <BucketBadge bucket={s.bucket} /></>}>
          <dl className="facts">
            <dt>Speaker</dt><dd>{s.speaker_id}</dd>
            <dt>Client</dt><dd>{s.client_id}</dd>
            <dt>Window</dt><dd>{s.window.mean_errors_per_100_words.toFixed(2)} errors/100 words over {s.window.size} of {s.window.capacity} jobs</dd>
            <dt>Pinned</dt><dd>{s.pin ? `to ${bucketLabel(s.pin.bucket)} by ${s.pin.pinned_by}: ${s.pin.reason}` : 'no'}</dd>
          </dl>
          <div className="buttons">
            <a className="button" href={link(`verify?speaker=${encodeURIComponent(s.speaker_id)}`)}>Verify this speaker</a>
            <a className="button secondary" href={link(`report?speaker=${encodeURIComponent(s.speaker_id)}&client=${encodeURIComponent(s.client_id)}`)}>Report an error</a>
          </div>
        </Card>
      )}
      <Card title="Quality trend">
        <SpeakerTrend id={id} compact={false} limit={200} />
      </Card>
      {s && (
        <Card title="Pin the bucket">
          {isLead(who) ? <PinForm speaker={s} onDone={reload} />
                       : <p className="muted">Only QA leads pin or unpin a speaker's bucket.</p>}
        </Card>
      )}
      <Card title="Bucket history">
        {history.loading && !history.data && <Loading what="history" />}
        <ErrorBox error={history.error} />
        <ol className="history">
          {history.data?.entries.slice().reverse().map((e) => (
            <li key={e.id}>
              <span className="small muted">{when(e.at)}</span>{' '}
              <strong>{e.kind}</strong>{' '}
              {e.previous_bucket ? `${bucketLabel(e.previous_bucket)} → ` : ''}{bucketLabel(e.new_bucket)}
              <div className="small">{e.reason} <span className="muted">by {e.actor || '—'}</span></div>
            </li>
          ))}
        </ol>
      </Card>
    </>
  );
}
