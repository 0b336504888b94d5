// Glob patterns of retention and immutability rules (Harbor's doublestar syntax): `*` matches any
// run of characters except `/`, `**` any run including `/`, `?` one character except `/`, and
// `{a,b,c}` any of the alternatives (not nested). Everything else matches itself.

/** Longest pattern accepted (rules are stored in columns of this size). */
export const MAX_PATTERN_LENGTH = 255;

/** Why a pattern is refused, or undefined when it is valid. Never echoes the pattern. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'must not be empty';
  if (pattern.length > MAX_PATTERN_LENGTH) return `must be at most ${MAX_PATTERN_LENGTH} characters`;
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'must not contain control characters';
  let depth = 0;
  for (const ch of pattern) {
    if (ch === '{') {
      if (depth > 0) return 'must not nest {…} alternatives';
      depth++;
    } else if (ch === '}') {
      if (depth === 0) return 'has a } without its {';
      depth--;
    }
  }
  if (depth !== 0) return 'has a { without its }';
  return undefined;
}

const compiled = new Map<string, (text: string) => boolean>();

/**
 * Whether `text` matches `pattern` as a whole (see the module comment); an invalid pattern matches
 * nothing. Time is linear in the text for every pattern: see `compile`.
 */
export function matchesPattern(pattern: string, text: string): boolean {
  let match = compiled.get(pattern);
  if (match === undefined) {
    match = compile(pattern);
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, match);
  }
  return match(text);
}

/**
 * A pattern's matcher. A backtracking regular expression with two wildcards or more takes time
 * exponential in their number on a text that almost matches (`*a*a*a*a*b`, a few dozen characters,
 * blocks the process for minutes): such patterns — anyone who may write a rule can send one — run
 * on an automaton instead (`automaton`), in time proportional to pattern × text. With at most one
 * wildcard on any path through the pattern, the regular expression backtracks at most once per
 * character and alternative, and is the faster of the two.
 */
function compile(pattern: string): (text: string) => boolean {
  if (patternProblem(pattern) !== undefined) return () => false;
  const tokens = tokenize(pattern);
  if (wildcards(tokens) <= 1) {
    const re = new RegExp(`^${translate(pattern)}$`, 'u');
    return (text) => re.test(text);
  }
  return automaton(tokens);
}

function translate(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` also matches nothing at all, so `a/**/b` matches `a/b`.
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else out += '.*';
      } else out += '[^/]*';
    } else if (ch === '?') out += '[^/]';
    else if (ch === '{') {
      const end = pattern.indexOf('}', i);
      out += `(?:${pattern.slice(i + 1, end).split(',').map(translate).join('|')})`;
      i = end;
    } else out += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'); // `\-` is no valid escape with the `u` flag
  }
  return out;
}

/** A pattern with its sense: the rule covers what matches it, or (`exclude`) what does not. */
export interface Selector {
  pattern: string;
  exclude: boolean;
}

/** Whether `text` is selected by `selector`. */
export function selects(selector: Selector, text: string): boolean {
  return matchesPattern(selector.pattern, text) !== selector.exclude;
}

/**
 * A repository's path within its project (what repository selectors match, as in Harbor):
 * `team/app/web` → `app/web`; a name of one segment (in `library`) is itself.
 */
export function pathInProject(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(slash + 1);
}

// ---- the automaton ----

/** A piece of a pattern: a character, `?`, `*`, `**`, `**` with its `/` (anyDir), or `{…}` (its alternatives). */
type Token = { kind: 'char'; char: string } | { kind: 'one' | 'star' | 'any' | 'anyDir' } | { kind: 'alt'; branches: Token[][] };

/** The tokens of a valid pattern, read as `translate` reads it (by code point). */
function tokenize(pattern: string): Token[] {
  const chars = [...pattern];
  const read = (from: number, to: number): Token[] => {
    const tokens: Token[] = [];
    for (let i = from; i < to; i++) {
      const ch = chars[i]!;
      if (ch === '*') {
        if (chars[i + 1] === '*' && i + 1 < to) {
          i++;
          if (chars[i + 1] === '/' && i + 1 < to) {
            i++;
            tokens.push({ kind: 'anyDir' });
          } else tokens.push({ kind: 'any' });
        } else tokens.push({ kind: 'star' });
      } else if (ch === '?') tokens.push({ kind: 'one' });
      else if (ch === '{') {
        const end = chars.indexOf('}', i);
        const branches: Token[][] = [];
        let start = i + 1;
        for (let j = i + 1; j <= end; j++) {
          if (j === end || chars[j] === ',') {
            branches.push(read(start, j));
            start = j + 1;
          }
        }
        tokens.push({ kind: 'alt', branches });
        i = end;
      } else tokens.push({ kind: 'char', char: ch });
    }
    return tokens;
  };
  return read(0, chars.length);
}

/** The most wildcards (`*`, `**`, anyDir) any path through `tokens` passes. */
function wildcards(tokens: Token[]): number {
  let n = 0;
  for (const t of tokens) {
    if (t.kind === 'star' || t.kind === 'any' || t.kind === 'anyDir') n++;
    else if (t.kind === 'alt') n += Math.max(0, ...t.branches.map(wildcards));
  }
  return n;
}

/** What a state consumes: one character of a class (or this exact one), to state `to`. */
interface Edge {
  accepts: 'notSlash' | 'any' | string;
  to: number;
}

/**
 * A nondeterministic automaton of the tokens, simulated over the text one character at a time with
 * the set of states it may be in: no backtracking, at most (states × characters) steps.
 */
function automaton(tokens: Token[]): (text: string) => boolean {
  const edges: (Edge | undefined)[] = [];
  const empty: number[][] = [];
  const state = (): number => {
    edges.push(undefined);
    empty.push([]);
    return edges.length - 1;
  };
  const build = (list: Token[], from: number): number => {
    let at = from;
    for (const t of list) {
      const next = state();
      if (t.kind === 'char' || t.kind === 'one') edges[at] = { accepts: t.kind === 'char' ? t.char : 'notSlash', to: next };
      else if (t.kind === 'star' || t.kind === 'any') {
        const loop = state();
        edges[loop] = { accepts: t.kind === 'star' ? 'notSlash' : 'any', to: loop };
        empty[at]!.push(loop);
        empty[loop]!.push(next);
      } else if (t.kind === 'anyDir') {
        // Nothing at all, or anything ending in `/`.
        const loop = state();
        const slash = state();
        edges[loop] = { accepts: 'any', to: loop };
        edges[slash] = { accepts: '/', to: next };
        empty[at]!.push(next, loop);
        empty[loop]!.push(slash);
      } else if (t.kind === 'alt') {
        for (const branch of t.branches) {
          const start = state();
          empty[at]!.push(start);
          empty[build(branch, start)]!.push(next);
        }
      }
      at = next;
    }
    return at;
  };
  const start = state();
  const accept = build(tokens, start);
  const count = edges.length;
  return (text) => {
    const seen = new Int32Array(count);
    let generation = 1;
    let current: number[] = [];
    const add = (into: number[], s: number): void => {
      const stack = [s];
      while (stack.length > 0) {
        const x = stack.pop()!;
        if (seen[x] === generation) continue;
        seen[x] = generation;
        into.push(x);
        for (const y of empty[x]!) stack.push(y);
      }
    };
    add(current, start);
    for (const ch of text) {
      generation++;
      const next: number[] = [];
      for (const s of current) {
        const edge = edges[s];
        if (edge === undefined) continue;
        if (edge.accepts === 'any' || (edge.accepts === 'notSlash' ? ch !== '/' : edge.accepts === ch)) add(next, edge.to);
      }
      if (next.length === 0) return false;
      current = next;
    }
    return current.includes(accept);
  };
}
