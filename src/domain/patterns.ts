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

const compiled = new Map<string, RegExp>();

/** Whether `text` matches `pattern` as a whole (see the module comment); an invalid pattern matches nothing. */
export function matchesPattern(pattern: string, text: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = patternProblem(pattern) === undefined ? new RegExp(`^${translate(pattern)}$`, 'u') : /(?!)/u;
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(text);
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
    } else out += ch.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
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
