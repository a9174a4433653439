// The node gives spans as half-open UTF-8 byte offsets into the original draft; JavaScript strings
// are UTF-16. Cutting the encoded bytes and decoding each piece is exact for any text, including
// characters outside the BMP, whatever the two encodings' lengths.

export interface Span {
  start: number;
  end: number;
}

export interface Piece<T> {
  text: string;
  item: T | null;  // the span this text is, or null between spans
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

// Splits `text` at the given byte spans (sorted, not overlapping; others are skipped).
export function splitByByteSpans<T extends { span: Span }>(text: string, items: T[]): Piece<T>[] {
  const bytes = encoder.encode(text);
  const out: Piece<T>[] = [];
  let at = 0;
  const sorted = [...items].sort((a, b) => a.span.start - b.span.start);
  for (const item of sorted) {
    const { start, end } = item.span;
    if (start < at || end < start || end > bytes.length) continue;
    if (start > at) out.push({ text: decoder.decode(bytes.subarray(at, start)), item: null });
    out.push({ text: decoder.decode(bytes.subarray(start, end)), item });
    at = end;
  }
  if (at < bytes.length) out.push({ text: decoder.decode(bytes.subarray(at)), item: null });
  return out;
}
