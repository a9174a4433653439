// Byte spans to JavaScript strings, without a browser: the node's offsets are UTF-8 bytes.
import { expect, test } from '@playwright/test';
import { splitByByteSpans } from '../src/utf8';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

test('spans after multi-byte characters land on the right text', () => {
  const draft = 'Pt. Müller 🩺 on metoprolal 25 — erythima noted.';
  const start1 = bytes('Pt. Müller 🩺 on ');
  const end1 = start1 + bytes('metoprolal 25');
  const start2 = bytes('Pt. Müller 🩺 on metoprolal 25 — ');
  const end2 = start2 + bytes('erythima');
  const pieces = splitByByteSpans(draft, [
    { span: { start: start2, end: end2 }, id: 2 },
    { span: { start: start1, end: end1 }, id: 1 },
  ]);
  expect(pieces.map((p) => p.text)).toEqual(['Pt. Müller 🩺 on ', 'metoprolal 25', ' — ', 'erythima', ' noted.']);
  expect(pieces.map((p) => p.item?.id ?? null)).toEqual([null, 1, null, 2, null]);
  expect(pieces.map((p) => p.text).join('')).toBe(draft);
});

test('spans that overlap or fall outside the text are skipped, never misplaced', () => {
  const draft = 'ab é cd';
  const pieces = splitByByteSpans(draft, [
    { span: { start: 0, end: 2 } },
    { span: { start: 1, end: 3 } },
    { span: { start: 5, end: 99 } },
  ]);
  expect(pieces.map((p) => p.text)).toEqual(['ab', ' é cd']);
  expect(splitByByteSpans('', [])).toEqual([]);
});
