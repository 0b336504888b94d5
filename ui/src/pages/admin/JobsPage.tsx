// Background jobs of every replica: filter by state and kind, see one job with its log, cancel a
// queued or running one, start a job meant to be started by hand. Refreshes while a job shown runs.
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { PageProps } from '../../app/routes';
import { api, seg, type Page } from '../../api/client';
import { JOB_KINDS, JOB_STATES, STARTABLE_KINDS, fieldErrors, isActive, jobFraction, type Job, type JobDetail, type JobState } from '../../api/operations';
import { Link, setQuery, useLocation } from '../../app/router';
import { DataTable, type Column, type ListParams } from '../../components/DataTable';
import { Dialog } from '../../components/Dialog';
import { SelectField, TextField } from '../../components/Field';
import { useAction, useApi, usePoll } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { Progress } from '../../components/Progress';
import { ErrorState, EmptyState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { LogView, elapsedSeconds, useDuration, useNow } from './operations-shared';
import { StateBadge } from '../../components/StateBadge';

/** A job's progress in a cell: a bar when it says done of total, else its phase. */
function JobProgress({ job }: { job: Job }) {
  const { t, number } = useI18n();
  const p = jobFraction(job.progress);
  if (!p) return <>—</>;
  if ('phase' in p) return <>{p.phase}</>;
  return <Progress label={t('jobs.progressOf', { done: number(p.done), total: number(p.total) })} value={p.done} max={p.total} />;
}

/** Where a job of some kinds has its own page. */
function ownPage(job: Job): string | undefined {
  if (job.kind === 'replication') return `/admin/replication/executions/${job.id}`;
  if (job.kind === 'gc') return `/admin/gc?run=${job.id}`;
  return undefined;
}

function useCancel(onDone: () => void) {
  const action = useAction();
  return { ...action, cancel: (id: number) => void action.run(async () => (await api.post(`/jobs/${seg(id)}/cancel`), onDone())) };
}

/** One job: its fields, payload, progress and log; polled every second while it is queued or running. */
function JobView({ id, onChange }: { id: number; onChange: () => void }) {
  const { t, dateTime, number } = useI18n();
  const duration = useDuration();
  const job = useApi((signal) => api.get<JobDetail>(`/jobs/${seg(id)}`, undefined, signal), [id]);
  const j = job.data;
  const live = isActive(j?.state);
  const now = useNow(live);
  usePoll(live, 1000, job.reload);
  const wasLive = useRef(false);
  useEffect(() => {
    if (wasLive.current && !live) onChange();
    wasLive.current = live;
  }, [live, onChange]);
  const cancel = useCancel(job.reload);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [id]);

  return (
    <section className="card" aria-labelledby="job-detail">
      <div className="ops-card-head">
        <h2 id="job-detail" className="ops-card-title" tabIndex={-1} ref={heading}>
          {t('jobs.detail.title', { id })}
        </h2>
        {j && live && !j.cancelRequested && (
          <button type="button" className="danger" disabled={cancel.busy} onClick={() => cancel.cancel(j.id)}>
            {t('jobs.cancel')}
          </button>
        )}
        <button type="button" onClick={() => setQuery({ job: undefined })}>
          {t('common.close')}
        </button>
      </div>
      {cancel.error !== undefined && <Notice kind="error">{errorMessage(t, cancel.error)}</Notice>}
      {!j ? (
        job.error !== undefined ? <ErrorState error={job.error} retry={job.reload} /> : <Loading />
      ) : (
        <>
          <div role="status" aria-live="polite" className="ops-status">
            <StateBadge state={j.state} cancelRequested={j.cancelRequested} /> <code>{j.kind}</code>
          </div>
          <JobProgress job={j} />
          <dl className="props">
            <dt>{t('jobs.col.attempts')}</dt>
            <dd>{t('jobs.attemptsOf', { attempts: number(j.attempts), max: number(j.maxAttempts) })}</dd>
            <dt>{t('jobs.col.created')}</dt>
            <dd>{dateTime(j.createdAt)}</dd>
            <dt>{t('jobs.detail.runAt')}</dt>
            <dd>{dateTime(j.runAt)}</dd>
            <dt>{t('jobs.col.started')}</dt>
            <dd>{dateTime(j.startedAt)}</dd>
            <dt>{t('jobs.col.finished')}</dt>
            <dd>{dateTime(j.finishedAt)}</dd>
            <dt>{t('jobs.detail.duration')}</dt>
            <dd>{duration(elapsedSeconds(j.startedAt, j.finishedAt, now))}</dd>
            {j.leaseOwner && (
              <>
                <dt>{t('jobs.detail.lease')}</dt>
                <dd>{t('jobs.detail.leaseText', { owner: j.leaseOwner, until: dateTime(j.leaseUntil) })}</dd>
              </>
            )}
            {j.error && (
              <>
                <dt>{t('jobs.col.error')}</dt>
                <dd className="ops-error">{j.error}</dd>
              </>
            )}
            {ownPage(j) && (
              <>
                <dt>{t('jobs.detail.more')}</dt>
                <dd>
                  <Link to={ownPage(j)!}>{t(j.kind === 'gc' ? 'jobs.detail.gcPage' : 'jobs.detail.executionPage')}</Link>
                </dd>
              </>
            )}
          </dl>
          <h3>{t('jobs.detail.payload')}</h3>
          <pre>{JSON.stringify(j.payload, null, 2)}</pre>
          <h3>{t('jobs.detail.progress')}</h3>
          <pre>{j.progress === null ? t('common.none') : JSON.stringify(j.progress, null, 2)}</pre>
          <h3>{t('jobs.detail.log')}</h3>
          <LogView lines={j.log} label={t('jobs.detail.logLabel', { id })} />
        </>
      )}
    </section>
  );
}

/** Starts a job of a kind meant to be started by hand (verify-blobs, with an optional read limit). */
function StartDialog({ open, onClose, onStarted }: { open: boolean; onClose: () => void; onStarted: (id: number) => void }) {
  const { t } = useI18n();
  const [kind, setKind] = useState<(typeof STARTABLE_KINDS)[number]>(STARTABLE_KINDS[0]);
  const [rate, setRate] = useState('');
  const action = useAction();
  useEffect(() => {
    if (open) {
      setRate('');
      action.clear();
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);
  const errors = fieldErrors(action.error);
  const rateError = errors['payload.bytesPerSecond'];
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let id = 0;
    const ok = await action.run(async () => {
      const payload = rate.trim() ? { bytesPerSecond: Math.round(Number(rate) * 1024 * 1024) } : undefined;
      id = (await api.post<{ id: number }>('/jobs', { kind, ...(payload ? { payload } : {}) })).id;
    });
    if (ok) onStarted(id);
  };
  return (
    <Dialog open={open} title={t('jobs.start.title')} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <SelectField label={t('jobs.start.kind')} value={kind} onChange={setKind} options={STARTABLE_KINDS.map((k) => ({ value: k, label: t('jobs.start.kindVerifyBlobs') }))} hint={t('jobs.start.verifyHint')} />
        <TextField type="number" label={`${t('jobs.start.rate')} ${t('common.optional')}`} value={rate} onChange={setRate} hint={t('jobs.start.rateHint')} error={rateError} />
        {action.error !== undefined && !rateError && <Notice kind="error">{errorMessage(t, action.error)}</Notice>}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={action.busy}>
            {t('jobs.start.submit')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function JobsPage(_props: PageProps) {
  const { t, dateTime, number } = useI18n();
  const { query } = useLocation();
  const state = JOB_STATES.find((s) => s === query.get('state')) ?? '';
  const kind = /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(query.get('kind') ?? '') ? query.get('kind')! : '';
  const shown = /^[1-9]\d{0,14}$/.test(query.get('job') ?? '') ? Number(query.get('job')) : undefined;
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState(false);
  const [starting, setStarting] = useState(false);
  const refresh = useCallback(() => setTick((n) => n + 1), []);
  usePoll(live, 2000, refresh);
  const cancel = useCancel(refresh);

  const load = useCallback(
    async (p: ListParams, signal: AbortSignal) => {
      const page = await api.get<Page<Job>>('/jobs', { page: p.page, pageSize: p.pageSize, state: state || undefined, kind: kind || undefined }, signal);
      setLive(page.items.some((j) => isActive(j.state)));
      return page;
    },
    [state, kind],
  );

  const columns: Column<Job>[] = [
    {
      key: 'id',
      header: t('jobs.col.id'),
      render: (j) => (
        <Link to={`/admin/jobs?${new URLSearchParams({ ...Object.fromEntries(query), job: String(j.id) }).toString()}`} aria-label={t('jobs.open', { id: j.id })}>
          {t('jobs.number', { id: j.id })}
        </Link>
      ),
    },
    { key: 'kind', header: t('jobs.col.kind'), render: (j) => <code className="ops-nowrap">{j.kind}</code> },
    { key: 'state', header: t('common.status'), render: (j) => <StateBadge state={j.state} cancelRequested={j.cancelRequested} /> },
    { key: 'attempts', header: t('jobs.col.attempts'), className: 'num', render: (j) => t('jobs.attemptsOf', { attempts: number(j.attempts), max: number(j.maxAttempts) }) },
    { key: 'progress', header: t('jobs.col.progress'), render: (j) => <JobProgress job={j} /> },
    { key: 'created', header: t('jobs.col.created'), render: (j) => dateTime(j.createdAt) },
    { key: 'started', header: t('jobs.col.started'), render: (j) => dateTime(j.startedAt) },
    { key: 'finished', header: t('jobs.col.finished'), render: (j) => dateTime(j.finishedAt) },
    { key: 'error', header: t('jobs.col.error'), render: (j) => (j.error ? <span className="ops-error ops-clip" title={j.error}>{j.error}</span> : '') },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (j) =>
        isActive(j.state) && !j.cancelRequested ? (
          <button type="button" className="ops-nowrap" disabled={cancel.busy} onClick={() => cancel.cancel(j.id)} aria-label={t('jobs.cancelLabel', { id: j.id })}>
            {t('jobs.cancel')}
          </button>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader
        title={t('jobs.title')}
        subtitle={t('jobs.subtitle')}
        actions={
          <button type="button" className="primary" onClick={() => setStarting(true)}>
            {t('jobs.start.button')}
          </button>
        }
      />
      {cancel.error !== undefined && <Notice kind="error">{errorMessage(t, cancel.error)}</Notice>}
      {shown !== undefined && <JobView key={shown} id={shown} onChange={refresh} />}
      <h2 className="visually-hidden">{t('jobs.listTitle')}</h2>
      <DataTable
        caption={t('jobs.caption')}
        columns={columns}
        load={load}
        rowKey={(j) => String(j.id)}
        reloadKey={`${state}:${kind}:${tick}`}
        toolbar={
          <>
            <SelectField<JobState | ''>
              label={t('jobs.filter.state')}
              value={state}
              onChange={(v) => setQuery({ state: v, page: undefined })}
              options={[{ value: '', label: t('jobs.filter.anyState') }, ...JOB_STATES.map((s) => ({ value: s, label: t(`jobState.${s}`) }))]}
            />
            <SelectField
              label={t('jobs.filter.kind')}
              value={kind}
              onChange={(v) => setQuery({ kind: v, page: undefined })}
              options={[{ value: '', label: t('jobs.filter.anyKind') }, ...[...JOB_KINDS, ...(kind && !(JOB_KINDS as readonly string[]).includes(kind) ? [kind] : [])].map((k) => ({ value: k, label: k }))]}
            />
          </>
        }
        empty={<EmptyState title={state || kind ? t('jobs.emptyFiltered') : t('jobs.empty')} />}
      />
      <StartDialog
        open={starting}
        onClose={() => setStarting(false)}
        onStarted={(id) => {
          setStarting(false);
          setQuery({ job: id, state: undefined, kind: undefined, page: undefined });
          refresh();
        }}
      />
    </>
  );
}
