// Verification: start a session for a speaker, read each job's draft with its corrections in place,
// mark each one, count what is left, submit.
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { newIdempotencyKey } from './api';
import { BucketBadge, Card, ErrorBox, Loading, go, isoDate, link, useApi, useLoad, when } from './common';
import { splitByByteSpans } from './utf8';
import { CATEGORIES, bucketLabel } from './types';
import type { Correction, Session, SessionJob } from './types';

export function StartScreen({ speaker }: { speaker: string }) {
  const api = useApi();
  const [speakerId, setSpeakerId] = useState(speaker);
  const [from, setFrom] = useState(isoDate(-30));
  const [to, setTo] = useState(isoDate(1));
  const [types, setTypes] = useState<string[]>([]);
  const [maxJobs, setMaxJobs] = useState(5);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [key, setKey] = useState(newIdempotencyKey);
  useEffect(() => setSpeakerId(speaker), [speaker]);
  const start = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { speaker_id: speakerId.trim(), from, to, max_jobs: maxJobs };
      if (types.length) body.error_types = types;
      const s = await api<Session>('POST', '/v1/verification-sessions', body, { 'Idempotency-Key': key });
      go(`sessions/${encodeURIComponent(s.id)}`);
    } catch (err) {
      setError(err);
      setKey(newIdempotencyKey());
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Start a verification session">
      <form className="form" onSubmit={start}>
        <label>Speaker id *<input name="speaker_id" value={speakerId} onChange={(e) => setSpeakerId(e.target.value)} required /></label>
        <div className="row">
          <label>From *<input name="from" type="date" value={from} onChange={(e) => setFrom(e.target.value)} required /></label>
          <label>To (not included) *<input name="to" type="date" value={to} onChange={(e) => setTo(e.target.value)} required /></label>
        </div>
        <label>Jobs at most<input name="max_jobs" type="number" min={1} max={100} value={maxJobs} onChange={(e) => setMaxJobs(Number(e.target.value))} /></label>
        <fieldset>
          <legend>Only jobs flagged with (optional)</legend>
          <div className="checks">
            {CATEGORIES.map((c) => (
              <label key={c} className="check">
                <input type="checkbox" checked={types.includes(c)}
                       onChange={(e) => setTypes((old) => (e.target.checked ? [...old, c] : old.filter((x) => x !== c)))} />
                {c.replace(/_/g, ' ')}
              </label>
            ))}
          </div>
        </fieldset>
        <div className="buttons"><button type="submit" disabled={busy}>{busy ? 'Pulling drafts…' : 'Start'}</button></div>
        <ErrorBox error={error} />
      </form>
    </Card>
  );
}

function Draft({ job, marks }: { job: SessionJob; marks: Record<number, string> }) {
  const pieces = splitByByteSpans(job.original_draft, job.corrections);
  return (
    <p className="draft">
      {pieces.map((p, i) => {
        const c = p.item;
        if (!c) return <span key={i}>{p.text}</span>;
        const mark = marks[c.correction_id] ?? '';
        const title = `#${c.correction_id}: ${c.applied ? 'applied' : 'proposed'}, confidence ${c.confidence.toFixed(2)}`;
        return c.applied ? (
          <span key={i} className={`corr applied ${mark}`} title={title} data-correction={c.correction_id}>
            <del>{p.text}</del><ins>{c.to}</ins><sup>{c.correction_id}</sup>
          </span>
        ) : (
          <span key={i} className={`corr proposed ${mark}`} title={title} data-correction={c.correction_id}>
            <mark>{p.text}</mark><span className="suggest">→ {c.to}</span><sup>{c.correction_id}</sup>
          </span>
        );
      })}
    </p>
  );
}

function CorrectionRow({ c, mark, onMark, disabled }: {
  c: Correction; mark: string; onMark: (v: string) => void; disabled: boolean;
}) {
  return (
    <li className="correction" data-correction={c.correction_id}>
      <div>
        <strong>#{c.correction_id}</strong> <q>{c.from}</q> → <q>{c.to}</q>{' '}
        <span className={c.applied ? 'badge applied' : 'badge proposed'}>{c.applied ? 'applied' : 'proposed'}</span>{' '}
        <span className="small muted">confidence {c.confidence.toFixed(2)}</span>
      </div>
      <div className="segmented" role="group" aria-label={`Mark correction ${c.correction_id}`}>
        <button type="button" className={mark === 'rectified' ? 'on good' : ''} aria-pressed={mark === 'rectified'}
                disabled={disabled} onClick={() => onMark('rectified')}>Rectified</button>
        <button type="button" className={mark === 'not_rectified' ? 'on bad' : ''} aria-pressed={mark === 'not_rectified'}
                disabled={disabled} onClick={() => onMark('not_rectified')}>Not rectified</button>
      </div>
    </li>
  );
}

function submitKey(id: string): string {
  // Kept across reloads: a submit whose answer was lost is retried with the same key.
  const name = `sbm-submit-key:${id}`;
  let key = sessionStorage.getItem(name);
  if (!key) {
    key = newIdempotencyKey();
    sessionStorage.setItem(name, key);
  }
  return key;
}

export function SessionScreen({ id }: { id: string }) {
  const api = useApi();
  const path = `/v1/verification-sessions/${encodeURIComponent(id)}`;
  const loaded = useLoad(() => api<Session>('GET', path), [id]);
  const [session, setSession] = useState<Session | null>(null);
  const [marks, setMarks] = useState<Record<number, string>>({});
  const [residual, setResidual] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const s = loaded.data;
    if (!s) return;
    setSession(s);
    setMarks(Object.fromEntries(s.marks.map((m) => [m.correction_id, m.verdict])));
    setResidual(Object.fromEntries(s.jobs.filter((j) => j.residual_errors !== null).map((j) => [j.job_id, String(j.residual_errors)])));
  }, [loaded.data]);

  const body = (m: Record<number, string>, r: Record<string, string>) => ({
    marks: Object.entries(m).map(([cid, verdict]) => ({ correction_id: Number(cid), verdict })),
    residual_errors: Object.entries(r).filter(([, v]) => v !== '').map(([job_id, v]) => ({ job_id, count: Number(v) })),
  });
  const save = async (m: Record<number, string>, r: Record<string, string>) => {
    setError(null);
    try {
      await api('PUT', `${path}/marks`, body(m, r));
      setSaved(`saved at ${new Date().toLocaleTimeString()}`);
      return true;
    } catch (err) {
      setError(err);
      setSaved('');
      return false;
    }
  };
  const mark = (cid: number, verdict: string) => {
    const next = { ...marks, [cid]: verdict };
    setMarks(next);
    void save(next, residual);
  };
  const submit = async () => {
    setBusy(true);
    try {
      if (!(await save(marks, residual))) return;
      const s = await api<Session>('POST', `${path}/submit`, undefined, { 'Idempotency-Key': submitKey(id) });
      setSession(s);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (loaded.loading && !session) return <Loading what="session" />;
  if (!session) return <ErrorBox error={loaded.error} />;
  const open = session.status === 'open';
  const total = session.jobs.reduce((n, j) => n + j.corrections.length, 0);
  const marked = Object.keys(marks).length;
  return (
    <>
      <Card title={<>Session for <a href={link(`speakers/${encodeURIComponent(session.speaker_id)}`)}>{session.speaker_id}</a></>}>
        <dl className="facts">
          <dt>Status</dt><dd data-testid="session-status">{session.status}</dd>
          <dt>Drafts</dt><dd>{session.jobs.length} jobs from {when(session.from)} to {when(session.to)} ({session.source}{session.stale ? `, stale since ${when(session.stale_since)}` : ''})</dd>
          <dt>Marked</dt><dd>{marked} of {total} corrections</dd>
          {open && <><dt>Expires</dt><dd>{when(session.expires_at)}</dd></>}
        </dl>
        {session.stale && <p className="warning">InstaNote did not answer: these drafts come from the cache.</p>}
      </Card>
      {session.jobs.length === 0 && <p className="muted">No drafts in this range.</p>}
      {session.jobs.map((job) => (
        <Card key={job.job_id} title={<span className="small">Job {job.job_id}</span>}
              actions={<span className="small muted">{when(job.created_at)} · audio {job.job_metadata.audio_quality} · {job.words} words</span>}>
          <Draft job={job} marks={marks} />
          {job.corrections.length === 0 ? <p className="muted small">No corrections proposed for this draft.</p> : (
            <ul className="corrections">
              {job.corrections.map((c) => (
                <CorrectionRow key={c.correction_id} c={c} mark={marks[c.correction_id] ?? ''} disabled={!open}
                               onMark={(v) => mark(c.correction_id, v)} />
              ))}
            </ul>
          )}
          <label className="inline">
            Word errors left in the corrected draft
            <input type="number" min={0} name={`residual-${job.job_id}`} value={residual[job.job_id] ?? ''} disabled={!open}
                   onChange={(e) => setResidual((old) => ({ ...old, [job.job_id]: e.target.value }))}
                   onBlur={() => open && void save(marks, residual)} />
          </label>
        </Card>
      ))}
      <Card>
        <ErrorBox error={error} />
        {open ? (
          <div className="buttons sticky">
            <span className="small muted" aria-live="polite">{saved}</span>
            <button type="button" onClick={submit} disabled={busy}>Submit the session</button>
          </div>
        ) : session.outcome ? (
          <div className="ok" role="status">
            Submitted {when(session.submitted_at)} by {session.submitted_by}. {session.outcome.jobs_sampled.length} jobs counted;
            bucket <BucketBadge bucket={session.outcome.bucket_before} /> → <BucketBadge bucket={session.outcome.bucket_after} />.
            <ul className="small">
              {session.outcome.weights.map((w) => (
                <li key={w.pattern_id}>pattern {w.pattern_id}: {w.status.replace('_', ' ')}, weight {w.weight.toFixed(1)}</li>
              ))}
            </ul>
          </div>
        ) : (
          <p className="muted">This session is {bucketLabel(session.status)}.</p>
        )}
      </Card>
    </>
  );
}
