// Garbage collection: start a run or a dry run, follow the current (or a chosen) run live — its
// phase, figures, ETA and log — cancel it, set the schedule, and look through earlier runs.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { PageProps } from '../../app/routes';
import { api, seg, type Page } from '../../api/client';
import { GC_PHASES, fieldErrors, gcEtaSeconds, isActive, type GcLogPage, type GcRun, type GcSchedule } from '../../api/operations';
import { Link, setQuery, useLocation } from '../../app/router';
import { DataTable, type Column } from '../../components/DataTable';
import { CheckboxField, TextField } from '../../components/Field';
import { useAction, useApi, usePoll } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { Progress } from '../../components/Progress';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n, type MessageKey } from '../../i18n/index';
import { LogView, elapsedSeconds, useDuration, useNow } from './operations-shared';
import { StateBadge } from '../../components/StateBadge';

const phaseKey = (phase: string): MessageKey => ((GC_PHASES as readonly string[]).includes(phase) || phase === 'done' ? (`gc.phase.${phase}` as MessageKey) : 'gc.phase.unknown');

/** One run: state, phase by phase, figures, ETA, Cancel and its log; polled every second while active. */
function RunView({ id, onChange }: { id: number; onChange: () => void }) {
  const { t, dateTime, number, bytes } = useI18n();
  const duration = useDuration();
  const run = useApi((signal) => api.get<GcRun>(`/system/gc/${seg(id)}`, undefined, signal), [id]);
  const [tick, setTick] = useState(0);
  const log = useApi((signal) => api.get<GcLogPage>(`/system/gc/${seg(id)}/log`, { limit: 200 }, signal), [id, tick]);
  const r = run.data;
  const live = isActive(r?.state);
  const now = useNow(live);
  usePoll(live, 1000, () => {
    run.reload();
    setTick((n) => n + 1);
  });
  const wasLive = useRef(false);
  useEffect(() => {
    if (wasLive.current && !live) {
      setTick((n) => n + 1);
      onChange();
    }
    wasLive.current = live;
  }, [live, onChange]);
  const cancel = useAction();

  if (!r) return run.error !== undefined ? <ErrorState error={run.error} retry={run.reload} /> : <Loading />;
  const f = r.figures;
  const phases = f?.phases ?? {};
  const finished = GC_PHASES.filter((p) => phases[p]?.state === 'done' || phases[p]?.state === 'skipped').length;
  const eta = gcEtaSeconds(f?.eta);
  const dry = r.dryRun;
  return (
    <section className="card" aria-labelledby="gc-run">
      <div className="ops-card-head">
        <h2 id="gc-run" className="ops-card-title">
          {t('gc.run.title', { id: r.id })}
        </h2>
        {live && !r.cancelRequested && (
          <button
            type="button"
            className="danger"
            disabled={cancel.busy}
            onClick={() =>
              void cancel.run(async () => {
                await api.post(`/system/gc/${seg(r.id)}/cancel`);
                run.reload();
              })
            }
          >
            {t('gc.cancel')}
          </button>
        )}
      </div>
      {cancel.error !== undefined && <Notice kind="error">{errorMessage(t, cancel.error)}</Notice>}
      <div role="status" aria-live="polite" className="ops-status">
        <StateBadge state={r.state} cancelRequested={r.cancelRequested} /> {dry && <span className="badge">{t('gc.dryRun.badge')}</span>}{' '}
        <span>{t('gc.run.phase', { phase: t(phaseKey(f?.phase ?? 'resume')) })}</span>
      </div>
      {live && <Progress label={t('gc.run.phases', { done: number(finished), total: number(GC_PHASES.length) })} value={finished} max={GC_PHASES.length} />}
      {dry && <p className="muted">{t('gc.dryRun.explain')}</p>}
      <dl className="props">
        <dt>{t('gc.run.trigger')}</dt>
        <dd>{r.trigger === 'schedule' ? t('gc.trigger.schedule') : t('gc.trigger.manual')}</dd>
        <dt>{t('gc.run.deleteUntagged')}</dt>
        <dd>{r.deleteUntagged ? t('common.yes') : t('common.no')}</dd>
        <dt>{t('gc.run.started')}</dt>
        <dd>{dateTime(r.startedAt ?? r.createdAt)}</dd>
        <dt>{t('gc.run.duration')}</dt>
        <dd>{duration(f?.durationSeconds ?? elapsedSeconds(r.startedAt, r.finishedAt, now))}</dd>
        {live && (
          <>
            <dt>{t('gc.run.eta')}</dt>
            <dd>{eta === null ? t('gc.run.etaUnknown') : t('gc.run.etaPhase', { duration: duration(eta) })}</dd>
          </>
        )}
        <dt>{dry ? t('gc.fig.bytesWould') : t('gc.fig.bytesFreed')}</dt>
        <dd>
          <strong>{bytes(f?.bytesFreed ?? 0)}</strong>
        </dd>
        <dt>{dry ? t('gc.fig.blobsWould') : t('gc.fig.blobsDeleted')}</dt>
        <dd>{number(f?.blobsDeleted ?? 0)}</dd>
        <dt>{t('gc.fig.manifests')}</dt>
        <dd>{number(f?.manifestsDeleted ?? 0)}</dd>
        <dt>{t('gc.fig.uploads')}</dt>
        <dd>{number(f?.uploadsDeleted ?? 0)}</dd>
        <dt>{t('gc.fig.orphans')}</dt>
        <dd>{number(f?.orphansDeleted ?? 0)}</dd>
        <dt>{t('gc.fig.examined')}</dt>
        <dd>{number(f?.examined ?? 0)}</dd>
        {f?.withinGrace && (f.withinGrace.blobs > 0 || f.withinGrace.manifests > 0) && (
          <>
            <dt>{t('gc.fig.withinGrace')}</dt>
            <dd>
              {t('gc.fig.withinGraceText', { blobs: number(f.withinGrace.blobs), bytes: bytes(f.withinGrace.bytes), manifests: number(f.withinGrace.manifests) })}
              {f.withinGrace.collectableAt && <div className="muted">{t('gc.fig.collectableAt', { time: dateTime(f.withinGrace.collectableAt) })}</div>}
            </dd>
          </>
        )}
        {r.error && (
          <>
            <dt>{t('gc.run.error')}</dt>
            <dd className="ops-error">{r.error}</dd>
          </>
        )}
      </dl>
      {f?.phases && (
        <div className="table-wrap ops-spaced" role="region" aria-label={t('gc.phases.caption')} tabIndex={0}>
          <table>
            <caption className="visually-hidden">{t('gc.phases.caption')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('gc.phases.phase')}</th>
                <th scope="col">{t('common.status')}</th>
                <th scope="col" className="num">
                  {t('gc.fig.examined')}
                </th>
                <th scope="col" className="num">
                  {dry ? t('gc.phases.wouldDelete') : t('gc.phases.deleted')}
                </th>
                <th scope="col" className="num">
                  {t('gc.phases.bytes')}
                </th>
              </tr>
            </thead>
            <tbody>
              {GC_PHASES.map((p) => {
                const ph = phases[p];
                return (
                  <tr key={p}>
                    <th scope="row">{t(phaseKey(p))}</th>
                    <td>{ph ? t(`gc.phaseState.${ph.state}` as MessageKey) : '—'}</td>
                    <td className="num">{number(ph?.examined ?? 0)}</td>
                    <td className="num">{number(ph?.deleted ?? 0)}</td>
                    <td className="num">{bytes(ph?.bytes ?? 0)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <h3>{t('gc.log')}</h3>
      {log.data ? <LogView lines={log.data.items} label={t('gc.logLabel', { id: r.id })} /> : log.error !== undefined ? <ErrorState error={log.error} retry={log.reload} /> : <Loading />}
    </section>
  );
}

/** The schedule: a cron expression (empty: off), whether scheduled runs delete untagged manifests. */
function ScheduleForm() {
  const { t, dateTime } = useI18n();
  const schedule = useApi((signal) => api.get<GcSchedule>('/system/gc/schedule', undefined, signal), []);
  const [cron, setCron] = useState('');
  const [untagged, setUntagged] = useState(false);
  const [saved, setSaved] = useState(false);
  const save = useAction();
  useEffect(() => {
    if (!schedule.data) return;
    setCron(schedule.data.cron ?? '');
    setUntagged(schedule.data.deleteUntagged);
  }, [schedule.data]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    if (await save.run(() => api.put<GcSchedule>('/system/gc/schedule', { cron: cron.trim() || null, deleteUntagged: untagged }))) {
      setSaved(true);
      schedule.reload();
    }
  };
  const errors = fieldErrors(save.error);
  const s = schedule.data;
  return (
    <section className="card" aria-labelledby="gc-schedule">
      <h2 id="gc-schedule" className="ops-card-title">
        {t('gc.schedule.title')}
      </h2>
      {schedule.error !== undefined && !s ? (
        <ErrorState error={schedule.error} retry={schedule.reload} />
      ) : !s ? (
        <Loading />
      ) : (
        <form onSubmit={submit} noValidate>
          <p>{s.cron ? t('gc.schedule.on', { cron: s.cron }) : t('gc.schedule.off')}</p>
          <dl className="props ops-spaced">
            <dt>{t('gc.schedule.next')}</dt>
            <dd>{s.nextRunAt ? dateTime(s.nextRunAt) : t('common.never')}</dd>
            <dt>{t('gc.schedule.last')}</dt>
            <dd>{s.lastRunAt ? dateTime(s.lastRunAt) : t('common.never')}</dd>
          </dl>
          <TextField label={t('gc.schedule.cron')} value={cron} onChange={setCron} maxLength={128} hint={t('gc.schedule.cronHint')} error={errors.cron} autoComplete="off" />
          <CheckboxField label={t('gc.schedule.deleteUntagged')} checked={untagged} onChange={setUntagged} />
          {save.error !== undefined && !errors.cron && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
          {saved && <Notice kind="success">{t('common.saved')}</Notice>}
          <div className="toolbar">
            <button type="submit" className="primary" disabled={save.busy}>
              {t('gc.schedule.save')}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

export function GcPage(_props: PageProps) {
  const { t, dateTime, number, bytes } = useI18n();
  const duration = useDuration();
  const { query } = useLocation();
  const chosen = /^[1-9]\d{0,14}$/.test(query.get('run') ?? '') ? Number(query.get('run')) : undefined;
  const [historyKey, setHistoryKey] = useState(0);
  const latest = useApi((signal) => api.get<Page<GcRun>>('/system/gc', { page: 1, pageSize: 1 }, signal), [historyKey]);
  const latestRun = latest.data?.items[0];
  const shown = chosen ?? latestRun?.id;
  const busy = isActive(latestRun?.state);
  const [untagged, setUntagged] = useState(false);
  const start = useAction();
  const refresh = useRef(() => setHistoryKey((n) => n + 1)).current;
  // While the newest run is active the history (its row) follows it too.
  usePoll(busy, 2000, refresh);

  const startRun = (dryRun: boolean) =>
    void start.run(async () => {
      const run = await api.post<GcRun>('/system/gc', { dryRun, deleteUntagged: untagged });
      setQuery({ run: run.id }, { replace: false });
      refresh();
    });

  const columns: Column<GcRun>[] = [
    { key: 'id', header: t('gc.history.run'), render: (r) => <Link to={`/admin/gc?run=${r.id}`} aria-label={t('gc.history.open', { id: r.id })} aria-current={r.id === shown ? 'true' : undefined}>{t('jobs.number', { id: r.id })}</Link> },
    { key: 'started', header: t('gc.run.started'), render: (r) => dateTime(r.startedAt ?? r.createdAt) },
    {
      key: 'state',
      header: t('common.status'),
      render: (r) => (
        <>
          <StateBadge state={r.state} cancelRequested={r.cancelRequested} /> {r.dryRun && <span className="badge">{t('gc.dryRun.badge')}</span>}
        </>
      ),
    },
    { key: 'trigger', header: t('gc.run.trigger'), render: (r) => (r.trigger === 'schedule' ? t('gc.trigger.schedule') : t('gc.trigger.manual')) },
    { key: 'bytes', header: t('gc.history.bytes'), className: 'num', render: (r) => (r.dryRun ? t('gc.history.wouldFree', { bytes: bytes(r.figures?.bytesFreed ?? 0) }) : bytes(r.figures?.bytesFreed ?? 0)) },
    { key: 'blobs', header: t('gc.history.blobs'), className: 'num', render: (r) => number(r.figures?.blobsDeleted ?? 0) },
    { key: 'duration', header: t('gc.run.duration'), className: 'num', render: (r) => duration(r.figures?.durationSeconds ?? elapsedSeconds(r.startedAt, r.finishedAt, Date.now())) },
  ];

  return (
    <>
      <PageHeader
        title={t('gc.title')}
        subtitle={t('gc.subtitle')}
        actions={
          <>
            <button type="button" className="primary" disabled={start.busy || busy} onClick={() => startRun(false)}>
              {t('gc.start')}
            </button>
            <button type="button" disabled={start.busy || busy} onClick={() => startRun(true)}>
              {t('gc.startDry')}
            </button>
          </>
        }
      />
      <CheckboxField label={t('gc.deleteUntagged')} checked={untagged} onChange={setUntagged} hint={t('gc.deleteUntaggedHint')} />
      {busy && <Notice kind="info">{t('gc.activeNotice', { id: latestRun!.id })}</Notice>}
      {start.error !== undefined && <Notice kind="error">{errorMessage(t, start.error)}</Notice>}
      {shown !== undefined ? (
        <RunView key={shown} id={shown} onChange={refresh} />
      ) : latest.error !== undefined ? (
        <ErrorState error={latest.error} retry={latest.reload} />
      ) : latest.data ? (
        <EmptyState title={t('gc.noRuns')}>
          <p>{t('gc.noRunsHint')}</p>
        </EmptyState>
      ) : (
        <Loading />
      )}
      <ScheduleForm />
      <section aria-labelledby="gc-history">
        <h2 id="gc-history">{t('gc.history.title')}</h2>
        <DataTable
          caption={t('gc.history.caption')}
          columns={columns}
          load={(p, signal) => api.get<Page<GcRun>>('/system/gc', { page: p.page, pageSize: p.pageSize }, signal)}
          rowKey={(r) => String(r.id)}
          queryPrefix="h"
          reloadKey={historyKey}
          empty={<EmptyState title={t('gc.noRuns')} />}
        />
      </section>
    </>
  );
}
