// Fitting text into a terminal's width: word wrapping with hanging indents, and tables whose cells wrap.
//
// Lengths are counted in UTF-16 units: every character the doctor prints (✓ ✗ · ↳ — → …) is one
// column wide, and so is one unit.

/** Characters after which a long word (a URL, a header value) may be broken. */
const BREAK_AFTER = /[/?&,;=:]/;

/**
 * Where to cut a word longer than `room`: just after `/ ? & , ; = :` when that keeps at least half
 * of the room filled, else at `room`.
 */
function cutAt(word: string, room: number): number {
  for (let i = room - 1; i >= Math.ceil(room / 2); i--) {
    if (BREAK_AFTER.test(word[i]!)) return i + 1;
  }
  return room;
}

/**
 * Wraps `text` to lines of at most `width` characters: the first starts with `first`, the others
 * with `rest` (a hanging indent, by default as wide as `first`). Words longer than a line are
 * broken. Always returns at least one line.
 */
export function wrap(text: string, width: number, first = '', rest = ' '.repeat(first.length)): string[] {
  // An indent wider than half the line would leave no room: shrink it.
  const cap = (prefix: string) => (prefix.length > width / 2 ? prefix.slice(0, Math.floor(width / 2)) : prefix);
  const head = cap(first);
  const hang = cap(rest);
  const lines: string[] = [];
  let line = head;
  let empty = true;
  const flush = () => {
    lines.push(line.trimEnd());
    line = hang;
    empty = true;
  };
  for (const word of text.split(/ +/).filter((w) => w !== '')) {
    if (!empty && line.length + 1 + word.length <= width) {
      line += ` ${word}`;
      continue;
    }
    if (!empty) flush();
    let remaining = word;
    for (;;) {
      const room = Math.max(1, width - line.length);
      if (remaining.length <= room) {
        line += remaining;
        empty = false;
        break;
      }
      const cut = cutAt(remaining, room);
      line += remaining.slice(0, cut);
      empty = false;
      remaining = remaining.slice(cut);
      flush();
    }
  }
  if (!empty || lines.length === 0) lines.push(line.trimEnd());
  return lines;
}

/** A table laid out for a width; `undefined` when even the narrowest columns do not fit. */
export interface TableLayout {
  readonly widths: readonly number[];
  /** Renders one row: each cell wrapped within its column, the row as tall as its tallest cell. */
  row(cells: readonly string[]): string[];
}

const GAP = 2;

/**
 * Column widths for `rows` (header included) within `width`. Columns in `fixed` keep their natural
 * width; the others share what is left, each getting at most its natural width and the narrow ones
 * first, so a short column is never wrapped to make room for a long one. Returns undefined when a
 * flexible column would get fewer than `minimum` characters.
 */
export function layoutTable(rows: readonly (readonly string[])[], width: number, fixed: readonly number[], minimum = 12): TableLayout | undefined {
  const columns = rows[0]?.length ?? 0;
  const natural = Array.from({ length: columns }, (_, i) => Math.max(0, ...rows.map((r) => r[i]!.length)));
  const widths = [...natural];
  const total = natural.reduce((a, b) => a + b, 0) + GAP * (columns - 1);
  if (total > width) {
    const flexible = natural.map((_, i) => i).filter((i) => !fixed.includes(i)).sort((a, b) => natural[a]! - natural[b]!);
    let room = width - GAP * (columns - 1) - fixed.reduce((sum, i) => sum + natural[i]!, 0);
    for (const [k, i] of flexible.entries()) {
      const share = Math.floor(room / (flexible.length - k));
      widths[i] = Math.min(natural[i]!, share);
      if (widths[i]! < Math.min(minimum, natural[i]!)) return undefined;
      room -= widths[i]!;
    }
  }
  return {
    widths,
    row(cells) {
      const wrapped = cells.map((c, i) => (widths[i]! > 0 ? wrap(c, widths[i]!) : ['']));
      const height = Math.max(...wrapped.map((w) => w.length));
      return Array.from({ length: height }, (_, line) =>
        wrapped.map((w, i) => (w[line] ?? '').padEnd(widths[i]!)).join(' '.repeat(GAP)).trimEnd());
    },
  };
}
