import { useState } from 'react';
import { api, type Page } from '../../../api/client';
import type { Delivery, DeliveryDetail, DeliveryState } from '../../../api/project-tabs';
import { setQuery } from '../../../app/router';
import { DataTable, type Column } from '../../../components/DataTable';
import { Dialog } from '../../../components/Dialog';
import { useAction, useApi } from '../../../components/hooks';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

function StateBadge({ state }: { state: DeliveryState }) {
  const { t } = useI18n();
  return <span className={`badge ${state === 'delivered' ? 'badge-ok' : state === 'failed' ? 'badge-bad' : 'badge-warn'}`}>{t(`webhooks.delivery.state.${state}`)}</span>;
}

/** JSON text indented for reading; anything else as it came. */
function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** One webhook's delivery log, newest first; each delivery's detail (body sent, start of the answer) and redelivery. */
export function WebhookDeliveries({ base, name, reloadKey }: { base: string; name: string; reloadKey: number }) {
  const { t, dateTime } = useI18n();
  const [own, setOwn] = useState(0);
  const [shown, setShown] = useState<number | null>(null);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);

  const redeliver = async (id: number) => {
    setNotice(null);
    try {
      await api.post(`${base}/deliveries/${id}/redeliver`);
      setNotice({ kind: 'success', text: t('webhooks.delivery.redelivered', { id }) });
    } catch (err) {
      setNotice({ kind: 'error', text: errorMessage(t, err) });
    }
    setOwn((k) => k + 1);
  };

  const columns: Column<Delivery>[] = [
    { key: 'id', header: t('webhooks.delivery.col.id'), render: (d) => d.id, className: 'num' },
    { key: 'event', header: t('webhooks.delivery.col.event'), render: (d) => (d.eventId === null ? t('webhooks.delivery.testEvent', { type: d.eventType }) : d.eventType) },
    {
      key: 'state',
      header: t('common.status'),
      render: (d) => (
        <>
          <StateBadge state={d.state} /> {d.statusCode !== null && <code>{d.statusCode}</code>}
          {d.error && <div className="muted pt-small">{d.error}</div>}
        </>
      ),
    },
    { key: 'attempts', header: t('webhooks.delivery.col.attempts'), render: (d) => d.attempts, className: 'num' },
    { key: 'time', header: t('webhooks.delivery.col.time'), render: (d) => dateTime(d.deliveredAt ?? d.updatedAt) },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (d) => (
        <span className="pt-actions">
          <button type="button" onClick={() => setShown(d.id)} aria-label={t('webhooks.delivery.detailLabel', { id: d.id })}>
            {t('common.details')}
          </button>
          <button type="button" onClick={() => void redeliver(d.id)} aria-label={t('webhooks.delivery.redeliverLabel', { id: d.id })}>
            {t('webhooks.delivery.redeliver')}
          </button>
        </span>
      ),
    },
  ];

  return (
    <section className="card" aria-labelledby="pt-deliveries-h">
      <div className="pt-head">
        <h3 id="pt-deliveries-h">{t('webhooks.delivery.title', { name })}</h3>
        <button type="button" onClick={() => setQuery({ webhook: undefined, 'wd.page': undefined })}>
          {t('common.close')}
        </button>
      </div>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <DataTable<Delivery>
        caption={t('webhooks.delivery.caption', { name })}
        columns={columns}
        rowKey={(d) => String(d.id)}
        queryPrefix="wd."
        reloadKey={`${reloadKey}:${own}`}
        load={({ page, pageSize }, signal) => api.get<Page<Delivery>>(`${base}/deliveries`, { page, pageSize }, signal)}
        toolbar={
          <button type="button" onClick={() => setOwn((k) => k + 1)}>
            {t('common.refresh')}
          </button>
        }
        empty={<EmptyState title={t('webhooks.delivery.empty')} />}
      />
      <DeliveryDialog base={base} id={shown} onClose={() => setShown(null)} onRedelivered={() => setOwn((k) => k + 1)} />
    </section>
  );
}

function DeliveryDialog({ base, id, onClose, onRedelivered }: { base: string; id: number | null; onClose: () => void; onRedelivered: () => void }) {
  const { t, dateTime } = useI18n();
  const detail = useApi((signal) => (id === null ? Promise.resolve(undefined) : api.get<DeliveryDetail>(`${base}/deliveries/${id}`, undefined, signal)), [base, id]);
  const again = useAction();
  const [done, setDone] = useState(false);
  const d = detail.data;
  const close = () => {
    setDone(false);
    again.clear();
    onClose();
  };
  return (
    <Dialog open={id !== null} title={t('webhooks.delivery.detailTitle', { id: id ?? 0 })} onClose={close}>
      {detail.error !== undefined && !detail.loading ? (
        <ErrorState error={detail.error} retry={detail.reload} />
      ) : !d || d.id !== id ? (
        <Loading />
      ) : (
        <>
          <dl className="props">
            <dt>{t('webhooks.delivery.col.event')}</dt>
            <dd>{d.eventType}</dd>
            <dt>{t('common.status')}</dt>
            <dd>
              <StateBadge state={d.state} /> {d.statusCode !== null && <code>{d.statusCode}</code>}
            </dd>
            <dt>{t('webhooks.delivery.col.attempts')}</dt>
            <dd>{d.attempts}</dd>
            <dt>{t('webhooks.delivery.messageId')}</dt>
            <dd>
              <code>{d.messageId}</code>
            </dd>
            <dt>{t('webhooks.delivery.created')}</dt>
            <dd>{dateTime(d.createdAt)}</dd>
            <dt>{t('webhooks.delivery.delivered')}</dt>
            <dd>{dateTime(d.deliveredAt)}</dd>
            {d.nextAttemptAt && (
              <>
                <dt>{t('webhooks.delivery.next')}</dt>
                <dd>{dateTime(d.nextAttemptAt)}</dd>
              </>
            )}
            {d.durationMs !== null && (
              <>
                <dt>{t('webhooks.delivery.duration')}</dt>
                <dd>{t('webhooks.delivery.ms', { ms: d.durationMs })}</dd>
              </>
            )}
            {d.error && (
              <>
                <dt>{t('webhooks.delivery.error')}</dt>
                <dd>{d.error}</dd>
              </>
            )}
          </dl>
          <h3>{t('webhooks.delivery.request')}</h3>
          <pre className="pt-pre">{pretty(d.request)}</pre>
          <h3>{t('webhooks.delivery.response')}</h3>
          {d.response ? <pre className="pt-pre">{d.response}</pre> : <p className="muted">{t('webhooks.delivery.noResponse')}</p>}
          {done && <Notice kind="success">{t('webhooks.delivery.redelivered', { id: d.id })}</Notice>}
          {again.error !== undefined && <Notice kind="error">{errorMessage(t, again.error)}</Notice>}
          <div className="dialog-actions">
            <button
              type="button"
              disabled={again.busy}
              onClick={() =>
                void again.run(() => api.post(`${base}/deliveries/${d.id}/redeliver`)).then((ok) => {
                  if (ok) {
                    setDone(true);
                    onRedelivered();
                    detail.reload();
                  }
                })
              }
            >
              {t('webhooks.delivery.redeliver')}
            </button>
            <button type="button" className="primary" onClick={close}>
              {t('common.close')}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
