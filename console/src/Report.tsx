// Filing an error report with every field of SPEC's report (seed 4.1's enhanced metadata included).
import { useState } from 'react';
import type { FormEvent } from 'react';
import { newIdempotencyKey } from './api';
import { Card, ErrorBox, link, useApi } from './common';
import { AUDIO_QUALITIES, CATEGORIES, CLARITIES, NOISES } from './types';

interface Filed {
  id: number;
  status: string;
  bucket_type: string;
  saga: { step: string };
}

export function ReportScreen({ speaker, client, job, original, corrected }: Record<string, string>) {
  const api = useApi();
  const [f, setF] = useState({
    speaker_id: speaker, client_id: client, job_id: job, original_text: original, corrected_text: corrected,
    audio_quality: 'good', speaker_clarity: 'clear', background_noise: 'low', number_of_speakers: 1,
    overlapping_speech: false, requires_specialized_knowledge: false, additional_notes: '', context_notes: '',
    context_text: '',
  });
  const [categories, setCategories] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [filed, setFiled] = useState<Filed | null>(null);
  const [busy, setBusy] = useState(false);
  const [key, setKey] = useState(newIdempotencyKey);
  const set = (name: string, value: unknown) => { setF((old) => ({ ...old, [name]: value })); setKey(newIdempotencyKey()); };
  const text = (name: keyof typeof f, label: string, opts: { area?: boolean; required?: boolean; hint?: string } = {}) => (
    <label>
      {label}{opts.required ? ' *' : ''}
      {opts.area
        ? <textarea name={name} value={String(f[name])} onChange={(e) => set(name, e.target.value)} rows={2} />
        : <input name={name} value={String(f[name])} onChange={(e) => set(name, e.target.value)} required={opts.required} />}
      {opts.hint && <span className="hint">{opts.hint}</span>}
    </label>
  );
  const select = (name: keyof typeof f, label: string, values: readonly string[]) => (
    <label>
      {label} *
      <select name={name} value={String(f[name])} onChange={(e) => set(name, e.target.value)}>
        {values.map((v) => <option key={v} value={v}>{v}</option>)}
      </select>
    </label>
  );
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = { ...f, error_categories: categories };
    for (const optional of ['additional_notes', 'context_notes', 'context_text'])
      if (!body[optional]) delete body[optional];
    try {
      setFiled(await api<Filed>('POST', '/v1/error-reports', body, { 'Idempotency-Key': key }));
      setKey(newIdempotencyKey());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Report an error">
      <form className="form" onSubmit={submit}>
        <fieldset>
          <legend>The draft</legend>
          {text('speaker_id', 'Speaker id', { required: true })}
          {text('client_id', 'Client id', { required: true })}
          {text('job_id', 'Job id', { required: true })}
          {text('original_text', 'Erroneous text (as in the draft)', { area: true, required: true })}
          {text('corrected_text', 'Correct text', { area: true, required: true })}
          {text('context_text', 'Context around it', { area: true, hint: 'helps match the pattern in later drafts' })}
        </fieldset>
        <fieldset>
          <legend>Error categories *</legend>
          <div className="checks">
            {CATEGORIES.map((c) => (
              <label key={c} className="check">
                <input type="checkbox" name="error_categories" value={c} checked={categories.includes(c)}
                       onChange={(e) => { setCategories((old) => (e.target.checked ? [...old, c] : old.filter((x) => x !== c))); setKey(newIdempotencyKey()); }} />
                {c.replace(/_/g, ' ')}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>Audio and speaker</legend>
          {select('audio_quality', 'Audio quality', AUDIO_QUALITIES)}
          {select('speaker_clarity', 'Speaker clarity', CLARITIES)}
          {select('background_noise', 'Background noise', NOISES)}
          <label>
            Number of speakers *
            <input name="number_of_speakers" type="number" min={1} max={20} value={f.number_of_speakers}
                   onChange={(e) => set('number_of_speakers', Number(e.target.value))} />
          </label>
          <label className="check">
            <input type="checkbox" name="overlapping_speech" checked={f.overlapping_speech}
                   onChange={(e) => set('overlapping_speech', e.target.checked)} />
            Overlapping speech
          </label>
          <label className="check">
            <input type="checkbox" name="requires_specialized_knowledge" checked={f.requires_specialized_knowledge}
                   onChange={(e) => set('requires_specialized_knowledge', e.target.checked)} />
            Requires specialized knowledge
          </label>
        </fieldset>
        <fieldset>
          <legend>Notes (encrypted at rest; reading them is audited)</legend>
          {text('additional_notes', 'Additional notes', { area: true })}
          {text('context_notes', 'Context notes', { area: true })}
        </fieldset>
        <div className="buttons">
          <button type="submit" disabled={busy}>File the report</button>
        </div>
        <ErrorBox error={error} />
        {filed && (
          <p className="ok" role="status">
            Report {filed.id} filed ({filed.status}, speaker was {filed.bucket_type.replace('_', ' ')}).{' '}
            <a href={link(`speakers/${encodeURIComponent(f.speaker_id)}`)}>Back to the speaker</a>
          </p>
        )}
      </form>
    </Card>
  );
}
