/**
 * A line diff (longest common subsequence) of a cell's source and a proposal's code.
 */

export type DiffOp = 'same' | 'add' | 'del';

export interface IDiffLine {
  op: DiffOp;
  text: string;
}

/** Cells are small; beyond this many line pairs the diff shows a plain replacement. */
const MAX_CELLS = 250_000;

function splitLines(text: string): string[] {
  return text.length === 0 ? [] : text.replace(/\r\n?/g, '\n').split('\n');
}

/**
 * The lines of `before` and `after` marked as kept, deleted or added, in order.
 */
export function lineDiff(before: string, after: string): IDiffLine[] {
  const a = splitLines(before);
  const b = splitLines(after);
  if (a.length * b.length > MAX_CELLS) {
    return [
      ...a.map(text => ({ op: 'del' as const, text })),
      ...b.map(text => ({ op: 'add' as const, text }))
    ];
  }
  // lcs[i][j] = length of the longest common subsequence of a[i:] and b[j:].
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0)
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] =
        a[i] === b[j]
          ? lcs[i + 1][j + 1] + 1
          : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const lines: IDiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      lines.push({ op: 'same', text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      lines.push({ op: 'del', text: a[i++] });
    } else {
      lines.push({ op: 'add', text: b[j++] });
    }
  }
  while (i < a.length) {
    lines.push({ op: 'del', text: a[i++] });
  }
  while (j < b.length) {
    lines.push({ op: 'add', text: b[j++] });
  }
  return lines;
}

/**
 * Only the changed lines with `context` unchanged lines around them; gaps become null.
 */
export function condense(
  lines: IDiffLine[],
  context = 2
): (IDiffLine | null)[] {
  const keep = lines.map(() => false);
  lines.forEach((line, index) => {
    if (line.op !== 'same') {
      const from = Math.max(0, index - context);
      const to = Math.min(lines.length - 1, index + context);
      for (let k = from; k <= to; k++) {
        keep[k] = true;
      }
    }
  });
  const out: (IDiffLine | null)[] = [];
  lines.forEach((line, index) => {
    if (keep[index]) {
      out.push(line);
    } else if (out.length === 0 || out[out.length - 1] !== null) {
      out.push(null);
    }
  });
  return out;
}
