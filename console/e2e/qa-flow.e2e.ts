// The QA flow end to end in Chromium against a real node (started by tests/e2e/test_console.py):
// a QA person signs in, reads speakers and trends, files a report, verifies a session and submits
// it; a QA lead pins and unpins and reads the audit log. Each screen is checked against what the
// API itself answers, screenshotted, and on the phone checked for sideways scrolling.
import { expect, test } from '@playwright/test';
import type { APIRequestContext, Page, TestInfo } from '@playwright/test';
import * as path from 'node:path';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through tests/e2e/test_console.py`);
  return v;
};
const QA = env('SBM_E2E_QA_TOKEN');
const LEAD = env('SBM_E2E_LEAD_TOKEN');
const SPEAKERS = env('SBM_E2E_SPEAKERS').split(',');
const FROM = env('SBM_E2E_FROM');
const TO = env('SBM_E2E_TO');
const SHOTS = process.env.SBM_E2E_SCREENSHOTS ?? 'test-results/screens';

function speakerOf(info: TestInfo): string {
  return SPEAKERS[info.project.name === 'phone' ? 1 : 0];
}

async function shot(page: Page, info: TestInfo, name: string) {
  await page.screenshot({ path: path.join(SHOTS, `${info.project.name}-${name}.png`), fullPage: true });
  if (info.project.name === 'phone') {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} scrolls sideways on a phone`).toBeLessThanOrEqual(1);
  }
}

function api(request: APIRequestContext, token: string) {
  const headers = { Authorization: `Bearer ${token}` };
  return {
    get: async (p: string) => {
      const r = await request.get(p, { headers });
      expect(r.status(), p).toBe(200);
      return r.json();
    },
    post: (p: string, data: unknown) => request.post(p, { headers, data }),
  };
}

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function signIn(page: Page, token: string) {
  await page.goto('/console/');
  await page.locator('textarea[name=token]').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('who')).toBeVisible();
}

test('a QA person reads speakers, files a report, verifies and submits', async ({ page, request }, info) => {
  const speaker = speakerOf(info);
  const qa = api(request, QA);

  // Sign-in refuses what is not a token, and a token that has expired, saying why.
  await page.goto('/console/');
  await page.locator('textarea[name=token]').fill('not a token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not a JWT');
  const expired = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'x', role: 'qa', exp: Math.floor(Date.now() / 1000) - 60 })}.c2ln`;
  await page.locator('textarea[name=token]').fill(expired);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('expired at');
  await shot(page, info, 'signin');

  await signIn(page, QA);
  await expect(page.getByTestId('who')).toContainText('console-qa');
  await expect(page.getByTestId('who')).toContainText('qa');
  await expect(page.getByTestId('expiry')).toContainText('expires at');
  await expect(page.getByRole('link', { name: 'Audit' })).toHaveCount(0);

  // Speakers by bucket, each with its trend.
  const s = await qa.get(`/v1/speakers/${speaker}`);
  await page.goto(`/console/#/speakers?bucket=${s.bucket}`);
  const card = page.locator(`a[data-speaker="${speaker}"]`);
  await expect(card.locator('svg[role=img]')).toBeVisible();
  await expect(card.locator('polyline')).toHaveCount(2);
  await shot(page, info, 'speakers');

  // The speaker: one point per stored sample, the history, no pin for a QA person.
  await card.click();
  const samples = await qa.get(`/v1/speakers/${speaker}/quality-samples?limit=200`);
  expect(samples.items.length).toBeGreaterThan(3);
  await expect(page.locator('figure.trend:not(.trend-compact) circle')).toHaveCount(samples.items.length);
  await expect(page.locator('figure.trend figcaption')).toContainText(`${samples.items.length} samples`);
  const history = await qa.get(`/v1/speakers/${speaker}/bucket-history`);
  await expect(page.locator('.history li')).toHaveCount(history.entries.length);
  await expect(page.getByText('Only QA leads pin')).toBeVisible();
  await expect(page.getByRole('button', { name: /^Pin to/ })).toHaveCount(0);
  await shot(page, info, 'speaker');

  // An API error is the problem's detail.
  await page.goto('/console/#/speakers/nobody-here');
  await expect(page.getByRole('alert').first()).toContainText('speaker nobody-here is not registered');

  // A report with every field.
  await page.goto(`/console/#/report?speaker=${speaker}&client=${s.client_id}`);
  const form = page.locator('form');
  await form.locator('input[name=job_id]').fill(`console-${info.project.name}`);
  await form.locator('textarea[name=original_text]').fill('seltraline 50 mg');
  await form.locator('textarea[name=corrected_text]').fill('sertraline 50 mg');
  await form.locator('textarea[name=context_text]').fill('started seltraline 50 mg daily');
  await form.locator('input[value=drug_name]').check();
  await form.locator('input[value=dosage]').check();
  await form.locator('select[name=audio_quality]').selectOption('fair');
  await form.locator('select[name=speaker_clarity]').selectOption('moderate');
  await form.locator('select[name=background_noise]').selectOption('moderate');
  await form.locator('input[name=number_of_speakers]').fill('2');
  await form.locator('input[name=overlapping_speech]').check();
  await form.locator('input[name=requires_specialized_knowledge]').check();
  await form.locator('textarea[name=additional_notes]').fill('heard over a pager');
  await form.locator('textarea[name=context_notes]').fill('psychiatry follow-up');
  await shot(page, info, 'report-form');
  await page.getByRole('button', { name: 'File the report' }).click();
  await expect(page.getByRole('status')).toContainText(/Report \d+ filed/);
  const reportId = (await page.getByRole('status').innerText()).match(/Report (\d+)/)![1];
  const filed = await qa.get(`/v1/error-reports/${reportId}`);
  expect(filed).toMatchObject({
    speaker_id: speaker, client_id: s.client_id, job_id: `console-${info.project.name}`,
    original_text: 'seltraline 50 mg', corrected_text: 'sertraline 50 mg', context_text: 'started seltraline 50 mg daily',
    error_categories: ['drug_name', 'dosage'], audio_quality: 'fair', speaker_clarity: 'moderate',
    background_noise: 'moderate', number_of_speakers: 2, overlapping_speech: true,
    requires_specialized_knowledge: true, additional_notes: 'heard over a pager', context_notes: 'psychiatry follow-up',
  });
  await shot(page, info, 'report-filed');

  // A refused start shows the node's detail.
  await page.goto(`/console/#/verify?speaker=${speaker}`);
  await page.locator('input[name=from]').fill(TO);
  await page.locator('input[name=to]').fill(FROM);
  await page.getByRole('button', { name: 'Start' }).click();
  const refused = await qa.post('/v1/verification-sessions', { speaker_id: speaker, from: TO, to: FROM, max_jobs: 5 });
  expect(refused.status()).toBe(400);
  await expect(page.getByRole('alert')).toContainText((await refused.json()).detail);

  // A session: each correction sits where its byte span says.
  await page.locator('input[name=from]').fill(FROM);
  await page.locator('input[name=to]').fill(TO);
  await page.locator('input[name=max_jobs]').fill('6');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.waitForURL(/#\/sessions\//);
  const sid = decodeURIComponent(page.url().split('#/sessions/')[1]);
  const session = await qa.get(`/v1/verification-sessions/${sid}`);
  const corrections = session.jobs.flatMap((j: { corrections: unknown[] }) => j.corrections);
  expect(corrections.length).toBeGreaterThan(1);
  for (const job of session.jobs) {
    const raw = Buffer.from(job.original_draft, 'utf8');
    for (const c of job.corrections) {
      const inDraft = page.locator(`.draft [data-correction="${c.correction_id}"] ${c.applied ? 'del' : 'mark'}`);
      await expect(inDraft).toHaveText(raw.subarray(c.span.start, c.span.end).toString('utf8'));
      if (c.applied) await expect(page.locator(`.draft [data-correction="${c.correction_id}"] ins`)).toHaveText(c.to);
    }
  }
  await shot(page, info, 'session');

  // Marks: the first rectified, the others not; a residual count for every job; submit.
  const verdicts = new Map<number, string>();
  for (const [i, c] of corrections.entries()) {
    const row = page.locator(`li.correction[data-correction="${c.correction_id}"]`);
    const verdict = i === 0 ? 'rectified' : 'not_rectified';
    await row.getByRole('button', { name: i === 0 ? 'Rectified' : 'Not rectified', exact: true }).click();
    await expect(row.getByRole('button', { name: i === 0 ? 'Rectified' : 'Not rectified', exact: true })).toHaveAttribute('aria-pressed', 'true');
    verdicts.set(c.correction_id, verdict);
  }
  for (const job of session.jobs) await page.locator(`input[name="residual-${job.job_id}"]`).fill('1');
  await expect(page.getByText(/saved at/)).toBeVisible();
  await page.getByRole('button', { name: 'Submit the session' }).click();
  await expect(page.getByTestId('session-status')).toHaveText('submitted');
  await expect(page.getByRole('status')).toContainText(`${session.jobs.length} jobs counted`);
  const submitted = await qa.get(`/v1/verification-sessions/${sid}`);
  expect(submitted.status).toBe('submitted');
  expect(new Map(submitted.marks.map((m: { correction_id: number; verdict: string }) => [m.correction_id, m.verdict])))
    .toEqual(verdicts);
  expect(submitted.outcome.jobs_sampled).toHaveLength(session.jobs.length);
  await shot(page, info, 'submitted');

  // The queue, by priority.
  await page.getByRole('link', { name: 'Queue' }).click();
  await expect(page.getByRole('heading', { name: 'Verification queue' })).toBeVisible();
  // The submit may schedule another verification meanwhile (through the outbox): compare the
  // screen with the API once both have settled on the same list.
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    const queue = await qa.get('/v1/verification-schedule?limit=200');
    await expect(page.locator('.list-item')).toHaveCount(queue.items.length, { timeout: 2000 });
    if (queue.items.some((v: { priority: string }) => v.priority === 'high'))
      await expect(page.locator('.list-item').first().locator('.badge')).toHaveText('high', { timeout: 2000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole('alert')).toHaveCount(0);
  await shot(page, info, 'queue');
});

test('a QA lead pins and unpins with a reason and reads the audit log', async ({ page, request }, info) => {
  const speaker = speakerOf(info);
  const lead = api(request, LEAD);
  await signIn(page, LEAD);
  await expect(page.getByTestId('who')).toContainText('console-lead');
  await page.goto(`/console/#/speakers/${speaker}`);
  const reason = `console ${info.project.name} pin`;
  await page.locator('select').first().selectOption('high_touch');
  await expect(page.getByRole('button', { name: 'Pin to high touch' })).toBeDisabled();
  await page.getByLabel('Reason (audited)').fill(reason);
  await page.getByRole('button', { name: 'Pin to high touch' }).click();
  await expect(page.locator('.facts')).toContainText(`to high touch by console-lead: ${reason}`);
  await expect(page.locator('.history li').first()).toContainText('pin');
  expect((await lead.get(`/v1/speakers/${speaker}`)).pin.reason).toBe(reason);
  await shot(page, info, 'pinned');

  await page.getByLabel('Reason (audited)').fill(`console ${info.project.name} unpin`);
  await page.getByRole('button', { name: 'Unpin' }).click();
  await expect(page.locator('.facts dd').nth(3)).toHaveText('no');
  expect((await lead.get(`/v1/speakers/${speaker}`)).pin).toBeNull();

  // The pin reaches the audit log through the speakers' outbox: look until it is there.
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.locator('input[name=action]').fill('bucket.pin');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(async () => {
    await page.reload();
    await expect(page.locator('.list-item.audit', { hasText: reason })).toHaveCount(1, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator('.list-item.audit').first()).toContainText('bucket.pin');
  await shot(page, info, 'audit');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.locator('textarea[name=token]')).toBeVisible();
});
