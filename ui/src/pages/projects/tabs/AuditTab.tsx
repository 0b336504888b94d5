import { useEffect, useState, type FormEvent } from 'react';
import { api, type Page } from '../../../api/client';
import type { AuditEvent } from '../../../api/project-tabs';
import type { ProjectTabProps } from '../../../api/projects';
import { setQuery, useLocation } from '../../../app/router';
import { DataTable, type Column } from '../../../components/DataTable';
import { TextField } from '../../../components/Field';
import { EmptyState, Notice } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

/** A datetime-local value (the browser's local time) as ISO 8601, or undefined when empty or unreadable. */
function isoOf(local: string): string | undefined {
  if (!local) return undefined;
  const ms = Date.parse(local);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The project's audit log, newest first, filtered by actor, action and time (held in the URL). */
export function AuditTab({ project }: ProjectTabProps) {
  const { t, dateTime } = useI18n();
  const { query } = useLocation();
  const canRead = project.permissions.includes('log.list');
  const applied = { actor: query.get('actor') ?? '', action: query.get('action') ?? '', from: query.get('from') ?? '', to: query.get('to') ?? '' };
  const [draft, setDraft] = useState(applied);
  const appliedKey = JSON.stringify(applied);
  useEffect(() => setDraft(JSON.parse(appliedKey) as typeof applied), [appliedKey]);

  if (!canRead) {
    return (
      <section aria-labelledby="pt-audit-h">
        <h2 id="pt-audit-h">{t('audit.title')}</h2>
        <Notice kind="info">{t('audit.noAccess')}</Notice>
      </section>
    );
  }

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setQuery({ actor: draft.actor.trim(), action: draft.action.trim(), from: draft.from, to: draft.to, 'a.page': undefined });
  };
  const clear = () => setQuery({ actor: undefined, action: undefined, from: undefined, to: undefined, 'a.page': undefined });
  const filtered = Object.values(applied).some(Boolean);

  const columns: Column<AuditEvent>[] = [
    { key: 'time', header: t('audit.col.time'), render: (e) => <span className="pt-nowrap">{dateTime(e.time)}</span> },
    { key: 'actor', header: t('audit.col.actor'), render: (e) => <code>{e.actor}</code> },
    { key: 'action', header: t('audit.col.action'), render: (e) => <code className="pt-nowrap">{e.action}</code> },
    {
      key: 'resource',
      header: t('audit.col.resource'),
      render: (e) => (
        <>
          <span className="muted">{e.resourceType}</span> <code>{e.resource}</code>
        </>
      ),
    },
    { key: 'client', header: t('audit.col.client'), render: (e) => e.client ?? '—' },
    { key: 'success', header: t('audit.col.result'), render: (e) => <span className={`badge ${e.success ? 'badge-ok' : 'badge-bad'}`}>{e.success ? t('audit.success') : t('audit.failure')}</span> },
    {
      key: 'detail',
      header: t('audit.col.detail'),
      render: (e) =>
        e.detail && Object.keys(e.detail).length > 0 ? (
          <details className="pt-details">
            <summary>{t('audit.showDetail')}</summary>
            <pre className="pt-pre">{JSON.stringify(e.detail, null, 2)}</pre>
          </details>
        ) : (
          '—'
        ),
    },
  ];

  return (
    <section aria-labelledby="pt-audit-h">
      <h2 id="pt-audit-h">{t('audit.title')}</h2>
      <form className="card pt-form" onSubmit={apply} aria-label={t('audit.filters')}>
        <div className="pt-row">
          <TextField label={t('audit.filter.actor')} value={draft.actor} onChange={(v) => setDraft({ ...draft, actor: v })} maxLength={255} hint={t('audit.filter.actorHint')} />
          <TextField label={t('audit.filter.action')} value={draft.action} onChange={(v) => setDraft({ ...draft, action: v })} maxLength={64} hint={t('audit.filter.actionHint')} />
          <TextField label={t('audit.filter.from')} type="datetime-local" value={draft.from} onChange={(v) => setDraft({ ...draft, from: v })} />
          <TextField label={t('audit.filter.to')} type="datetime-local" value={draft.to} onChange={(v) => setDraft({ ...draft, to: v })} />
        </div>
        <div className="toolbar">
          <button type="submit" className="primary">
            {t('audit.filter.apply')}
          </button>
          <button type="button" onClick={clear} disabled={!filtered}>
            {t('audit.filter.clear')}
          </button>
        </div>
      </form>
      <DataTable<AuditEvent>
        caption={t('audit.caption', { project: project.name })}
        columns={columns}
        rowKey={(e) => String(e.id)}
        queryPrefix="a."
        reloadKey={appliedKey}
        load={({ page, pageSize }, signal) =>
          api.get<Page<AuditEvent>>(
            '/audit',
            { project: project.name, actor: applied.actor || undefined, action: applied.action || undefined, from: isoOf(applied.from), to: isoOf(applied.to), page, pageSize },
            signal,
          )
        }
        empty={<EmptyState title={filtered ? t('audit.emptyFiltered') : t('audit.empty')} />}
      />
    </section>
  );
}
