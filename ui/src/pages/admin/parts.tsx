// Small pieces the administration and account pages share: a table for lists the API answers
// whole (a group's members, a user's groups), a user's source as a badge and as a list filter.

import type { ReactNode } from 'react';
import type { UserSource } from '../../api/admin';
import { setQuery } from '../../app/router';
import { useI18n } from '../../i18n/index';

/** A plain table for a short list the server answered in one piece (no paging to do). */
export function SimpleTable<T>({ caption, columns, rows, rowKey }: { caption: string; columns: { key: string; header: string; render: (row: T) => ReactNode; className?: string }[]; rows: T[]; rowKey: (row: T) => string }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.key} scope="col" className={c.className}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.key} className={c.className} data-label={c.header}>
                  {c.render(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}


/** Where an account or group lives, as words (never colour alone). */
export function SourceBadge({ source }: { source: string }) {
  const { t } = useI18n();
  const label = source === 'local' ? t('users.source.local') : source === 'ldap' ? t('users.source.ldap') : source === 'oidc' ? t('users.source.oidc') : source;
  return <span className="badge">{label}</span>;
}

/**
 * The toolbar's "source" filter of a list (users: local, ldap, oidc; groups: ldap, oidc): the choice
 * lives in the address (`?source=`), like the rest of the list's state.
 */
export function SourceFilter({ label, sources, source }: { label: string; sources: readonly UserSource[]; source: UserSource | undefined }) {
  const { t } = useI18n();
  return (
    <label className="admin-inline-select">
      {label}{' '}
      <select value={source ?? ''} onChange={(e) => setQuery({ source: e.target.value, page: undefined })}>
        <option value="">{t('users.source.all')}</option>
        {sources.map((s) => (
          <option key={s} value={s}>
            {t(`users.source.${s}`)}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A password of 20 characters from the browser's cryptographic generator (for an administrator's reset). */
export function generatePassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  // 256 is not a multiple of 56: bytes at or past 224 would skew the draw, so they are re-drawn.
  return Array.from(bytes, (b) => {
    let v = b;
    while (v >= 224) v = crypto.getRandomValues(new Uint8Array(1))[0]!;
    return alphabet[v % alphabet.length];
  }).join('');
}
