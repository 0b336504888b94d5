// Search filters (RFC 4515) and distinguished names (RFC 4514) as Berth builds and compares them.
// Every value that came from outside (a typed user name, a DN read from the directory) goes into a
// filter through escapeFilterValue: an unescaped `*` or `)` would let `a)(uid=*` match anyone.

/** The matching rule Active Directory evaluates through nested groups (LDAP_MATCHING_RULE_IN_CHAIN). */
export const MATCHING_RULE_IN_CHAIN = '1.2.840.113556.1.4.1941';

/**
 * Escapes a value for an assertion inside a filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
 * become `\2a`, `\28`, `\29`, `\5c`, `\00`; everything else (UTF-8 included) is kept.
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A configured filter with its outer parentheses, so `objectClass=person` and `(objectClass=person)` both work. */
export function wrapFilter(filter: string): string {
  const trimmed = filter.trim();
  return trimmed.startsWith('(') ? trimmed : `(${trimmed})`;
}

/** `(&<userFilter>(<uidAttribute>=<username>))`, the search for the one entry a user name belongs to. */
export function userSearchFilter(userFilter: string, uidAttribute: string, username: string): string {
  return `(&${wrapFilter(userFilter)}(${uidAttribute}=${escapeFilterValue(username)}))`;
}

/**
 * The groups that list `memberDN` among their members: directly (`none`, `search`), or through any
 * chain of groups (`activeDirectory`, one search evaluated by the domain controller).
 */
export function groupMembershipFilter(
  groupFilter: string,
  membershipAttribute: string,
  memberDN: string,
  nested: 'none' | 'activeDirectory' | 'search',
): string {
  const rule = nested === 'activeDirectory' ? `:${MATCHING_RULE_IN_CHAIN}:` : '';
  return `(&${wrapFilter(groupFilter)}(${membershipAttribute}${rule}=${escapeFilterValue(memberDN)}))`;
}

/** The groups that list any of `memberDNs` among their members (one level of the `search` walk). */
export function anyMemberFilter(groupFilter: string, membershipAttribute: string, memberDNs: readonly string[]): string {
  const terms = memberDNs.map((dn) => `(${membershipAttribute}=${escapeFilterValue(dn)})`).join('');
  return `(&${wrapFilter(groupFilter)}(|${terms}))`;
}

/** `(&<filter>(<attribute>=<value>))`. */
export function andEquals(filter: string, attribute: string, value: string): string {
  return `(&${wrapFilter(filter)}(${attribute}=${escapeFilterValue(value)}))`;
}

/** Whether `name` is an attribute description usable in a filter: a name or an OID, with options. */
export function isAttributeName(name: string): boolean {
  return /^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)(;[A-Za-z0-9-]+)*$/.test(name);
}

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;

/** Splits a DN into RDNs of [type, value] pairs with escapes resolved; undefined when it is not a DN. */
function parseDN(dn: string): Array<Array<[string, string]>> | undefined {
  const rdns: Array<Array<[string, string]>> = [];
  let rdn: Array<[string, string]> = [];
  let i = 0;
  const n = dn.length;
  const skipSpaces = (): void => {
    while (i < n && dn[i] === ' ') i++;
  };
  skipSpaces();
  if (i === n) return undefined;
  for (;;) {
    skipSpaces();
    const typeStart = i;
    while (i < n && /[A-Za-z0-9.;-]/.test(dn[i] as string)) i++;
    const type = dn.slice(typeStart, i);
    skipSpaces();
    if (!isAttributeName(type) || dn[i] !== '=') return undefined;
    i++;
    skipSpaces();
    let value = '';
    if (dn[i] === '#') {
      // BER-encoded value: compared as its hex text.
      const start = i;
      i++;
      while (i < n && /[0-9a-fA-F]/.test(dn[i] as string)) i++;
      value = dn.slice(start, i).toLowerCase();
    } else {
      const bytes: number[] = [];
      let pendingSpaces = 0;
      while (i < n && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        const c = dn[i] as string;
        if (c === '\\') {
          const pair = dn.slice(i + 1, i + 3);
          if (HEX_PAIR.test(pair)) {
            bytes.push(Number.parseInt(pair, 16));
            i += 3;
          } else if (i + 1 < n) {
            bytes.push(...Buffer.from(dn[i + 1] as string));
            i += 2;
          } else return undefined;
          pendingSpaces = 0;
          continue;
        }
        if (c === '"') return undefined;
        pendingSpaces = c === ' ' ? pendingSpaces + 1 : 0;
        const code = dn.codePointAt(i) as number;
        const ch = String.fromCodePoint(code);
        bytes.push(...Buffer.from(ch));
        i += ch.length;
      }
      // Unescaped trailing spaces are not part of the value.
      if (pendingSpaces > 0) bytes.splice(bytes.length - pendingSpaces, pendingSpaces);
      value = Buffer.from(bytes).toString('utf8');
    }
    rdn.push([type.toLowerCase(), value]);
    if (i >= n) break;
    const sep = dn[i];
    i++;
    if (sep === ',' || sep === ';') {
      rdns.push(rdn);
      rdn = [];
    }
    if (i >= n) return undefined;
  }
  rdns.push(rdn);
  return rdns;
}

/**
 * The canonical form Berth compares DNs in: attribute types and values lower-cased (directories
 * match the usual naming attributes case-insensitively), spaces around separators dropped,
 * escapes resolved and re-applied uniformly, multi-valued RDNs sorted. Undefined when `dn` is
 * not a DN (an empty string, a plain name).
 */
export function normalizeDN(dn: string): string | undefined {
  const rdns = parseDN(dn);
  if (!rdns) return undefined;
  return rdns
    .map((rdn) =>
      rdn
        .map(([type, value]) => `${type}=${escapeDNValue(value.toLowerCase().replace(/\s+/g, ' '))}`)
        .sort()
        .join('+'),
    )
    .join(',');
}

/** Whether two DNs name the same entry (compared in their {@link normalizeDN} forms; unparsable DNs never match). */
export function sameDN(a: string, b: string): boolean {
  const na = normalizeDN(a);
  return na !== undefined && na === normalizeDN(b);
}

/** Whether `dn` lies at or below `base`. */
export function isUnderDN(dn: string, base: string): boolean {
  const nd = normalizeDN(dn);
  const nb = normalizeDN(base);
  return nd !== undefined && nb !== undefined && (nd === nb || nd.endsWith(`,${nb}`));
}

function escapeDNValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=\u0000]/g, (c) => (c === '\u0000' ? '\\00' : `\\${c}`))
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}
