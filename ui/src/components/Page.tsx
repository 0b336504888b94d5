import type { ReactNode } from 'react';
import { Link, useTitle } from '../app/router';
import { useI18n } from '../i18n/index';

/**
 * The top of a page: breadcrumbs (each a link, the last is this page), the page's one <h1>, and
 * its main actions on the right. Sets the document title.
 */
export function PageHeader({ title, crumbs = [], actions, subtitle }: { title: string; crumbs?: { label: string; to: string }[]; actions?: ReactNode; subtitle?: ReactNode }) {
  const { t } = useI18n();
  useTitle(title);
  return (
    <>
      {crumbs.length > 0 && (
        <nav className="breadcrumbs" aria-label={t('common.back')}>
          <ol>
            {crumbs.map((c) => (
              <li key={c.to}>
                <Link to={c.to}>{c.label}</Link>
              </li>
            ))}
          </ol>
        </nav>
      )}
      <div className="page-header">
        <h1>{title}</h1>
        {actions && <div className="actions">{actions}</div>}
      </div>
      {subtitle && <p className="muted">{subtitle}</p>}
    </>
  );
}
