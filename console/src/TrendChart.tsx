// A speaker's quality trend in plain SVG: each verified job's residual errors per 100 words, oldest
// left, on the bucket bands the node decides by, with the rolling mean over the policy's window.
import { useEffect, useRef, useState } from 'react';
import type { QualitySamples } from './types';

interface Props {
  data: QualitySamples;
  compact?: boolean;
}

const BAND_FILL = ['#e3f4e8', '#eef6d9', '#fbefd9', '#fadddd'];

export function rollingMean(values: number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= window) sum -= values[i - window];
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

// Drawn at the width it is shown at (one SVG unit per CSS pixel), so labels keep their size and
// points stay round on a phone as on a desktop.
function useWidth(fallback: number) {
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(120, Math.round(entry.contentRect.width))));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return { ref, width };
}

export function TrendChart({ data, compact = false }: Props) {
  const values = data.items.map((s) => s.errors_per_100_words);
  const { no_touch_max, low_touch_max, medium_touch_max } = data.bands;
  const { ref, width } = useWidth(compact ? 240 : 640);
  const height = compact ? 64 : 220;
  const pad = compact ? { l: 2, r: 2, t: 2, b: 2 } : { l: 36, r: 8, t: 8, b: 22 };
  const top = Math.max(medium_touch_max * 1.3, ...values.map((v) => v * 1.1), 1);
  const x = (i: number) =>
    pad.l + (values.length <= 1 ? (width - pad.l - pad.r) / 2 : (i * (width - pad.l - pad.r)) / (values.length - 1));
  const y = (v: number) => pad.t + (1 - Math.min(v, top) / top) * (height - pad.t - pad.b);
  const limits = [0, no_touch_max, low_touch_max, medium_touch_max, top];
  const mean = rollingMean(values, Math.max(1, data.window_capacity));
  const line = (vs: number[]) => vs.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const last = values.length ? mean[mean.length - 1] : null;
  const label = values.length
    ? `${values.length} samples; latest ${values[values.length - 1].toFixed(2)}, rolling mean ${last!.toFixed(2)} errors per 100 words`
    : 'no quality samples yet';
  return (
    <figure className={compact ? 'trend trend-compact' : 'trend'} ref={ref}>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={`Quality trend: ${label}`}>
        {limits.slice(0, 4).map((lo, i) => (
          <rect key={i} x={pad.l} width={width - pad.l - pad.r} y={y(limits[i + 1])}
                height={Math.max(0, y(lo) - y(limits[i + 1]))} fill={BAND_FILL[i]} />
        ))}
        {!compact && [no_touch_max, low_touch_max, medium_touch_max].map((v) => (
          <g key={v}>
            <line x1={pad.l} x2={width - pad.r} y1={y(v)} y2={y(v)} stroke="#9aa5b1" strokeDasharray="3 3" />
            <text x={pad.l - 4} y={y(v) + 4} textAnchor="end" fontSize="11" fill="#52606d">{v}</text>
          </g>
        ))}
        {values.length > 1 && <polyline points={line(values)} fill="none" stroke="#3e4c59" strokeWidth={compact ? 1 : 1.5} />}
        {values.length > 1 && <polyline points={line(mean)} fill="none" stroke="#1f6feb" strokeWidth={compact ? 1.5 : 2.5} strokeDasharray={compact ? undefined : '6 3'} />}
        {!compact && values.map((v, i) => (
          <circle key={i} cx={x(i)} cy={y(v)} r={3} fill="#3e4c59">
            <title>{`${data.items[i].job_id}: ${v.toFixed(2)} errors/100 words, ${new Date(data.items[i].at).toLocaleString()}`}</title>
          </circle>
        ))}
        {compact && values.length === 1 && <circle cx={x(0)} cy={y(values[0])} r={2.5} fill="#3e4c59" />}
        {!compact && values.length > 0 && (
          <>
            <text x={pad.l} y={height - 6} fontSize="11" fill="#52606d">{new Date(data.items[0].at).toLocaleDateString()}</text>
            <text x={width - pad.r} y={height - 6} fontSize="11" textAnchor="end" fill="#52606d">
              {new Date(data.items[values.length - 1].at).toLocaleDateString()}
            </text>
          </>
        )}
      </svg>
      {!compact && (
        <figcaption>
          {label}{data.truncated ? ' (older samples left out)' : ''}. Bands: no touch ≤ {no_touch_max}, low ≤ {low_touch_max},
          medium ≤ {medium_touch_max}; the dashed line is the mean over the last {data.window_capacity} jobs.
        </figcaption>
      )}
    </figure>
  );
}
