// Parsing `WWW-Authenticate` challenges (RFC 7235 auth-params, as registries send them).

/** One parsed challenge. */
export interface Challenge {
  /** Lower-case scheme: `bearer`, `basic`, … */
  readonly scheme: string;
  /** Lower-case parameter names: realm, service, scope, error, … */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` value into its challenges. Quoted strings may contain commas and
 * escaped quotes; several challenges may share one header (`Bearer …, Basic realm="x"`).
 */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const challenges: Challenge[] = [];
  let current: { scheme: string; params: Record<string, string> } | undefined;
  let i = 0;
  const skip = (chars: RegExp): void => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < header.length && !/[\s,=]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const name = token();
    if (name === '') {
      i++;
      continue;
    }
    skip(/\s/);
    if (header[i] !== '=') {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
      continue;
    }
    i++;
    skip(/\s/);
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\') i++;
        value += header[i] ?? '';
        i++;
      }
      i++;
    } else {
      value = token();
    }
    if (current) current.params[name.toLowerCase()] = value;
  }
  return challenges;
}

/** The first challenge of a scheme, if any. */
export function findChallenge(header: string | undefined, scheme: 'bearer' | 'basic'): Challenge | undefined {
  return parseChallenges(header).find((c) => c.scheme === scheme);
}
