import { useState } from 'react';
import { api, seg, type Page } from '../../../api/client';
import type { Delivery, SavedWebhook, Webhook } from '../../../api/project-tabs';
import type { ProjectTabProps } from '../../../api/projects';
import { setQuery, useLocation } from '../../../app/router';
import { Copyable } from '../../../components/CopyButton';
import { DataTable, type Column } from '../../../components/DataTable';
import { ConfirmDialog, Dialog } from '../../../components/Dialog';
import { EmptyState, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { WebhookDeliveries } from './WebhookDeliveries';
import { WebhookForm } from './WebhookForm';

/** A project's webhook policies (project administrators): list, create, edit, test, delete; and one policy's delivery log. */
export function WebhooksTab({ project }: ProjectTabProps) {
  const { t } = useI18n();
  const { query } = useLocation();
  const manage = project.permissions.includes('project.update');
  const base = `/projects/${seg(project.name)}/webhooks`;
  const [reloadKey, setReloadKey] = useState(0);
  const [deliveriesKey, setDeliveriesKey] = useState(0);
  const [editing, setEditing] = useState<Webhook | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);
  const chosen = query.get('webhook') ?? undefined;
  const reload = () => setReloadKey((k) => k + 1);

  const test = async (w: Webhook) => {
    setNotice(null);
    try {
      const delivery = await api.post<Delivery>(`${base}/${seg(w.name)}/test`);
      setNotice({ kind: 'success', text: t('webhooks.testQueued', { name: w.name, id: delivery.id }) });
      setQuery({ webhook: w.name, 'wd.page': undefined });
      setDeliveriesKey((k) => k + 1);
    } catch (err) {
      setNotice({ kind: 'error', text: errorMessage(t, err) });
    }
  };

  if (!manage) {
    return (
      <section aria-labelledby="pt-webhooks-h">
        <h2 id="pt-webhooks-h">{t('webhooks.title')}</h2>
        <Notice kind="info">{t('webhooks.noAccess')}</Notice>
      </section>
    );
  }

  const columns: Column<Webhook>[] = [
    {
      key: 'name',
      header: t('webhooks.col.name'),
      render: (w) => (
        <>
          <strong>{w.name}</strong>
          {w.description && <div className="muted pt-small">{w.description}</div>}
        </>
      ),
    },
    { key: 'url', header: t('webhooks.col.url'), render: (w) => <code className="pt-url">{w.url}</code> },
    { key: 'events', header: t('webhooks.col.events'), render: (w) => <span className="pt-badges">{w.events.map((e) => <span key={e} className="badge">{t(`webhooks.event.${e}`)}</span>)}</span> },
    {
      key: 'status',
      header: t('common.status'),
      render: (w) => (
        <span className="pt-badges">
          <span className={`badge ${w.enabled ? 'badge-ok' : ''}`}>{w.enabled ? t('common.enabled') : t('common.disabled')}</span>
          {w.hasSecret && <span className="badge">{t('webhooks.signed')}</span>}
          {w.hasAuthHeader && <span className="badge">{t('webhooks.hasAuth')}</span>}
        </span>
      ),
    },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (w) => (
        <span className="pt-actions">
          <button type="button" onClick={() => setQuery({ webhook: w.name, 'wd.page': undefined })} aria-label={t('webhooks.deliveriesLabel', { name: w.name })} aria-pressed={chosen === w.name}>
            {t('webhooks.deliveries')}
          </button>
          <button type="button" onClick={() => void test(w)} aria-label={t('webhooks.testLabel', { name: w.name })}>
            {t('webhooks.test')}
          </button>
          <button type="button" onClick={() => setEditing(w)} aria-label={t('webhooks.editLabel', { name: w.name })}>
            {t('common.edit')}
          </button>
          <button type="button" onClick={() => setDeleting(w)} aria-label={t('webhooks.deleteLabel', { name: w.name })}>
            {t('common.delete')}
          </button>
        </span>
      ),
    },
  ];

  return (
    <section aria-labelledby="pt-webhooks-h">
      <h2 id="pt-webhooks-h">{t('webhooks.title')}</h2>
      <p className="muted">{t('webhooks.intro')}</p>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <DataTable<Webhook>
        caption={t('webhooks.caption', { project: project.name })}
        columns={columns}
        rowKey={(w) => w.name}
        queryPrefix="w."
        reloadKey={reloadKey}
        load={({ page, pageSize }, signal) => api.get<Page<Webhook>>(base, { page, pageSize }, signal)}
        toolbar={
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('webhooks.new')}
          </button>
        }
        empty={
          <EmptyState title={t('webhooks.empty')}>
            <p>{t('webhooks.emptyHint')}</p>
          </EmptyState>
        }
      />
      {chosen && <WebhookDeliveries key={chosen} base={`${base}/${seg(chosen)}`} name={chosen} reloadKey={deliveriesKey} />}
      <WebhookForm
        open={editing !== null}
        base={base}
        existing={editing === 'new' ? null : editing}
        onClose={() => setEditing(null)}
        onSaved={(saved: SavedWebhook, created: boolean) => {
          setEditing(null);
          setNotice({ kind: 'success', text: t(created ? 'webhooks.created' : 'webhooks.updated', { name: saved.name }) });
          if (saved.secret) setSecret({ name: saved.name, secret: saved.secret });
          reload();
        }}
      />
      <Dialog open={secret !== null} title={t('webhooks.secret.title')} onClose={() => setSecret(null)}>
        {secret && (
          <>
            <div className="secret" role="status">
              <strong>{t('webhooks.secret.once')}</strong>
            </div>
            <p>{t('webhooks.secret.text', { name: secret.name })}</p>
            <div className="pt-copy">
              <Copyable text={secret.secret} what={t('webhooks.secret.what')} />
            </div>
            <div className="dialog-actions">
              <button type="button" className="primary" onClick={() => setSecret(null)}>
                {t('webhooks.secret.done')}
              </button>
            </div>
          </>
        )}
      </Dialog>
      <ConfirmDialog
        open={deleting !== null}
        title={t('webhooks.deleteTitle')}
        message={deleting ? t('webhooks.deleteConfirm', { name: deleting.name }) : ''}
        confirmLabel={t('common.delete')}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`${base}/${seg(deleting.name)}`);
          setNotice({ kind: 'success', text: t('webhooks.deleted', { name: deleting.name }) });
          if (chosen === deleting.name) setQuery({ webhook: undefined, 'wd.page': undefined });
          reload();
        }}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}
