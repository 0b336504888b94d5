import type { ReactNode } from 'react';
import { ApiError } from '../api/client';
import { useI18n, type Translate } from '../i18n/index';

/** What an error means to the person looking at the page, in their language. */
export function errorMessage(t: Translate, error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return t('error.network');
    if (error.status === 401) return t('error.signedOut');
    if (error.status === 403) return t('error.forbidden');
    if (error.status === 404) return t('error.notFound');
    return t('error.server', { message: error.message });
  }
  return t('error.server', { message: error instanceof Error ? error.message : String(error) });
}

/** An error in place of content, with what to do next. */
export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  const { t } = useI18n();
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">{t('error.title')}</p>
      <p>{errorMessage(t, error)}</p>
      {retry && (
        <button type="button" onClick={retry}>
          {t('common.retry')}
        </button>
      )}
    </div>
  );
}

/** Nothing to show yet: says so and offers the next step. */
export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children}
    </div>
  );
}

export function Loading() {
  const { t } = useI18n();
  return (
    <p className="state state-loading" role="status">
      {t('common.loading')}
    </p>
  );
}

/** A message after an action: `error` is announced at once, `success` politely. */
export function Notice({ kind, children }: { kind: 'success' | 'error' | 'info' | 'warning'; children: ReactNode }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}
