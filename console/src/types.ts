// The shapes of the node's answers the console reads (README, "REST API").

export const BUCKETS = ['no_touch', 'low_touch', 'medium_touch', 'high_touch'] as const;
export const CATEGORIES = [
  'medical_terminology', 'drug_name', 'dosage', 'homophone', 'numbers_units',
  'punctuation_formatting', 'speaker_attribution',
] as const;
export const AUDIO_QUALITIES = ['excellent', 'good', 'fair', 'poor'] as const;
export const CLARITIES = ['clear', 'moderate', 'unclear'] as const;
export const NOISES = ['none', 'low', 'moderate', 'high'] as const;

export interface Speaker {
  speaker_id: string;
  client_id: string;
  display_name: string;
  bucket: string;
  pin: { bucket: string; reason: string; pinned_by: string; pinned_at: string | null } | null;
  window: { size: number; capacity: number; mean_errors_per_100_words: number };
  counts: { samples_total: number; bucket_changes: number };
  created_at: string | null;
  updated_at: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | number | null;
}

export interface QualitySample {
  job_id: string;
  errors_per_100_words: number;
  actor: string;
  at: string;
}

export interface QualitySamples {
  speaker_id: string;
  items: QualitySample[];
  truncated: boolean;
  window_capacity: number;
  bands: { no_touch_max: number; low_touch_max: number; medium_touch_max: number };
}

export interface HistoryEntry {
  id: number;
  kind: string;
  previous_bucket: string | null;
  new_bucket: string;
  reason: string;
  actor: string;
  at: string | null;
}

export interface Correction {
  correction_id: number;
  span: { start: number; end: number };
  from: string;
  to: string;
  pattern_id: number;
  confidence: number;
  applied: boolean;
  match: string;
  mark: 'rectified' | 'not_rectified' | null;
}

export interface SessionJob {
  job_id: string;
  created_at: string;
  job_metadata: { audio_quality: string; duration: number | null; source_system: string };
  error_types: string[];
  original_draft: string;
  corrected_text: string;
  corrections: Correction[];
  words: number;
  residual_errors: number | null;
}

export interface Session {
  id: string;
  speaker_id: string;
  client_id: string;
  owner: string;
  status: string;
  from: string;
  to: string;
  error_types: string[];
  max_jobs: number;
  source: string;
  stale: boolean;
  stale_since: string | null;
  expires_at: string | null;
  submitted_at: string | null;
  submitted_by: string | null;
  jobs: SessionJob[];
  marks: { correction_id: number; verdict: string }[];
  outcome: {
    applied: boolean;
    weights: { pattern_id: number; status: string; weight: number }[];
    jobs_sampled: string[];  // the jobs whose residual count became a quality sample
    bucket_before: string;
    bucket_after: string;
  } | null;
}

export interface ScheduledVerification {
  id: number;
  speaker_id: string;
  priority: string;
  reason: string;
  status: string;
  client_id: string | null;
  created_at: string | null;
}

export interface AuditRecord {
  id: number;
  at: string | null;
  actor: string;
  actor_kind: string;
  action: string;
  target: string;
  peer: string;
  detail: unknown;
  client_id?: string | null;
}

export function bucketLabel(b: string): string {
  return b.replace('_', ' ');
}
