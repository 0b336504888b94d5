// One replication execution, live: its figures polled every second while it is queued or running
// (progress bar, outcome counts, an estimate of the time left), Cancel, its tasks and its log.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { PageProps } from '../../app/routes';
import { api, seg, type Page } from '../../api/client';
import { TASK_OUTCOMES, executionDone, executionFigures, isActive, type ExecutionDetail, type LogLine, type ReplicationTask, type TaskOutcome } from '../../api/operations';
import { Link, setQuery, useLocation } from '../../app/router';
import { DataTable, type Column, type ListParams } from '../../components/DataTable';
import { SelectField } from '../../components/Field';
import { useAction, useApi, usePoll } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { Progress } from '../../components/Progress';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { LogView, elapsedSeconds, useDuration, useNow } from './operations-shared';
import { StateBadge } from '../../components/StateBadge';

const OUTCOME_CLASS: Record<TaskOutcome, string> = { copied: 'badge badge-ok', skipped: 'badge', diverged: 'badge badge-warn', deleted: 'badge', failed: 'badge badge-bad' };

function OutcomeBadge({ outcome }: { outcome: TaskOutcome }) {
  const { t } = useI18n();
  return <span className={OUTCOME_CLASS[outcome] ?? 'badge'}>{t(`execution.outcome.${outcome}`)}</span>;
}

const short = (digest: string | null | undefined) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '—');

export function ExecutionPage({ params }: PageProps) {
  const { t, dateTime, number, bytes } = useI18n();
  const duration = useDuration();
  const id = /^[1-9]\d{0,14}$/.test(params.id ?? '') ? params.id! : '';
  const { query } = useLocation();
  const outcome = TASK_OUTCOMES.find((o) => o === query.get('outcome')) ?? '';
  const [tick, setTick] = useState(0);
  const execution = useApi((signal) => api.get<ExecutionDetail>(`/replication/executions/${seg(id || '0')}`, undefined, signal), [id]);
  const log = useApi((signal) => api.get<{ items: LogLine[] }>(`/replication/executions/${seg(id || '0')}/log`, undefined, signal), [id, tick]);
  const e = execution.data;
  const live = isActive(e?.state);
  const now = useNow(live);
  usePoll(live, 1000, () => {
    execution.reload();
    setTick((n) => n + 1);
  });
  // Once it ends, the tasks and log are read one last time.
  const wasLive = useRef(false);
  useEffect(() => {
    if (wasLive.current && !live) setTick((n) => n + 1);
    wasLive.current = live;
  }, [live]);

  // Figures are estimated per artifact: the API gives no ETA for replication, so the rate so far is used.
  const rate = useRef<{ at: number; done: number }[]>([]);
  const f = executionFigures(e?.progress);
  const done = f ? executionDone(f) : 0;
  useEffect(() => {
    if (!f || !live) return void (rate.current = []);
    rate.current = [...rate.current.filter((s) => now - s.at < 30_000), { at: Date.now(), done }];
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [done, live]);
  let eta: number | null = null;
  if (f && live && f.phase === 'copying' && f.total > done && rate.current.length > 1) {
    const first = rate.current[0]!;
    const last = rate.current[rate.current.length - 1]!;
    const perSecond = (last.done - first.done) / Math.max(1, (last.at - first.at) / 1000);
    if (perSecond > 0) eta = (f.total - done) / perSecond;
  }

  const cancel = useAction();
  const doCancel = () => void cancel.run(async () => {
    await api.post(`/replication/executions/${seg(id)}/cancel`);
    execution.reload();
  });

  const loadTasks = useCallback(
    (p: ListParams, signal: AbortSignal) => api.get<Page<ReplicationTask>>(`/replication/executions/${seg(id || '0')}/tasks`, { page: p.page, pageSize: p.pageSize, outcome: outcome || undefined }, signal),
    [id, outcome],
  );
  const columns: Column<ReplicationTask>[] = [
    { key: 'subject', header: t('execution.task.subject'), render: (x) => <code className="ops-nowrap">{x.subject}</code> },
    { key: 'outcome', header: t('execution.task.outcome'), render: (x) => <OutcomeBadge outcome={x.outcome} /> },
    { key: 'destination', header: t('execution.task.destination'), render: (x) => (x.destination ? <code className="ops-nowrap">{x.destination}</code> : '—') },
    {
      key: 'digest',
      header: t('execution.task.digest'),
      render: (x) => (
        <>
          <code className="ops-nowrap" title={x.digest ?? undefined}>{short(x.digest)}</code>
          {x.destinationDigest && <div className="muted">{t('execution.task.destinationDigest', { digest: short(x.destinationDigest) })}</div>}
        </>
      ),
    },
    { key: 'bytes', header: t('execution.task.bytes'), className: 'num', render: (x) => (x.bytes === undefined ? '—' : bytes(x.bytes)) },
    {
      key: 'blobs',
      header: t('execution.task.blobs'),
      className: 'num',
      render: (x) => (x.blobsCopied === undefined && x.blobsMounted === undefined && x.blobsSkipped === undefined ? '—' : t('execution.task.blobCounts', { copied: number(x.blobsCopied ?? 0), mounted: number(x.blobsMounted ?? 0), skipped: number(x.blobsSkipped ?? 0) })),
    },
    { key: 'duration', header: t('execution.task.duration'), className: 'num', render: (x) => (x.durationMs === null ? '—' : duration(x.durationMs / 1000)) },
    { key: 'attempts', header: t('execution.task.attempts'), className: 'num', render: (x) => (x.attempts === null ? '—' : number(x.attempts)) },
    { key: 'message', header: t('execution.task.message'), render: (x) => (x.error ? <span className="ops-error">{x.error}</span> : (x.note ?? '')) },
  ];

  if (!id) return <ErrorState error={new Error(t('execution.badId'))} />;
  const title = t('execution.title', { id });
  const crumbs = [
    { label: t('replication.title'), to: '/admin/replication' },
    ...(e?.rule ? [{ label: e.rule, to: `/admin/replication?rule=${encodeURIComponent(e.rule)}` }] : []),
  ];
  if (!e) {
    return (
      <>
        <PageHeader title={title} crumbs={crumbs} />
        {execution.error !== undefined ? <ErrorState error={execution.error} retry={execution.reload} /> : <Loading />}
      </>
    );
  }
  // A running execution reports its first figures only when its first artifact is done.
  const phase = f ? t(`execution.phase.${f.phase}`) : e.state === 'queued' ? t('execution.phase.waiting') : live ? t('execution.phase.listing') : '—';
  return (
    <>
      <PageHeader
        title={title}
        crumbs={crumbs}
        actions={
          live && !e.cancelRequested ? (
            <button type="button" className="danger" onClick={doCancel} disabled={cancel.busy}>
              {t('execution.cancel')}
            </button>
          ) : undefined
        }
      />
      {cancel.error !== undefined && <Notice kind="error">{errorMessage(t, cancel.error)}</Notice>}
      {execution.error !== undefined && <Notice kind="warning">{errorMessage(t, execution.error)}</Notice>}
      <section className="card" aria-labelledby="execution-summary">
        <h2 id="execution-summary" className="ops-card-title">
          {t('execution.summary')}
        </h2>
        <div role="status" aria-live="polite" className="ops-status">
          <StateBadge state={e.state} cancelRequested={e.cancelRequested} /> <span>{t('execution.phaseLabel', { phase })}</span>
        </div>
        {f && f.total > 0 ? (
          <Progress label={t('execution.progress', { done: number(done), total: number(f.total) })} value={done} max={f.total} />
        ) : live ? (
          <Progress label={t('execution.listing')} />
        ) : null}
        <dl className="props">
          <dt>{t('execution.rule')}</dt>
          <dd>{e.rule ? <Link to={`/admin/replication?rule=${encodeURIComponent(e.rule)}`}>{e.rule}</Link> : <span className="muted">{t('execution.ruleDeleted')}</span>}</dd>
          <dt>{t('replication.col.trigger')}</dt>
          <dd>{t(`replication.trigger.${e.trigger}`)}</dd>
          <dt>{t('execution.created')}</dt>
          <dd>{dateTime(e.createdAt)}</dd>
          <dt>{t('execution.started')}</dt>
          <dd>{dateTime(e.startedAt)}</dd>
          <dt>{t('execution.finished')}</dt>
          <dd>{e.finishedAt ? dateTime(e.finishedAt) : '—'}</dd>
          <dt>{t('execution.duration')}</dt>
          <dd>{duration(elapsedSeconds(e.startedAt, e.finishedAt, now))}</dd>
          {live && (
            <>
              <dt>{t('execution.eta')}</dt>
              <dd>{eta === null ? t('execution.etaUnknown') : t('execution.etaAbout', { duration: duration(eta) })}</dd>
            </>
          )}
          <dt>{t('execution.bytes')}</dt>
          <dd>{bytes(f?.bytes ?? 0)}</dd>
          {e.error && (
            <>
              <dt>{t('execution.error')}</dt>
              <dd className="ops-error">{e.error}</dd>
            </>
          )}
        </dl>
        {/* Tasks are written in batches while it runs: the live figures are the execution's own counts. */}
        <h3>{t('execution.outcomes')}</h3>
        <ul className="ops-counts">
          {TASK_OUTCOMES.map((o) => (
            <li key={o}>
              <OutcomeBadge outcome={o} /> <strong>{number(live && f ? f[o] : (e.outcomes[o] ?? (f ? f[o] : 0)))}</strong>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="execution-tasks">
        <h2 id="execution-tasks">{t('execution.tasks')}</h2>
        <DataTable
          caption={t('execution.tasksCaption', { id })}
          columns={columns}
          load={loadTasks}
          rowKey={(x) => `${x.subject}|${x.outcome}|${x.destination ?? ''}`}
          queryPrefix="task"
          reloadKey={`${outcome}:${tick}`}
          toolbar={
            <SelectField<TaskOutcome | ''>
              label={t('execution.filterOutcome')}
              value={outcome}
              onChange={(v) => setQuery({ outcome: v, taskpage: undefined })}
              options={[{ value: '', label: t('execution.allOutcomes') }, ...TASK_OUTCOMES.map((o) => ({ value: o, label: t(`execution.outcome.${o}`) }))]}
            />
          }
          empty={<EmptyState title={outcome ? t('execution.noTasksOutcome') : live ? t('execution.noTasksYet') : t('execution.noTasks')} />}
        />
      </section>
      <section aria-labelledby="execution-log">
        <h2 id="execution-log">{t('execution.log')}</h2>
        {log.data ? <LogView lines={log.data.items} label={t('execution.log')} /> : log.error !== undefined ? <ErrorState error={log.error} retry={log.reload} /> : <Loading />}
      </section>
    </>
  );
}
