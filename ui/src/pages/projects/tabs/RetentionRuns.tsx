import { useEffect, useRef, useState } from 'react';
import { api, seg, type Page } from '../../../api/client';
import type { RetentionItem, RetentionOutcome, RetentionRun, RetentionRunDetail } from '../../../api/project-tabs';
import { setQuery, useLocation } from '../../../app/router';
import { DataTable, type Column } from '../../../components/DataTable';
import { SelectField } from '../../../components/Field';
import { useAction, useApi, usePoll } from '../../../components/hooks';
import { Progress } from '../../../components/Progress';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { StateBadge } from '../../../components/StateBadge';

const OUTCOMES: RetentionOutcome[] = ['retained', 'deleted', 'would-delete', 'failed', 'pending'];
const KNOWN_BASES = ['rule', 'immutable', 'unselected', 'unretained', 'changed'];
const live = (run: RetentionRun | undefined) => run !== undefined && (run.state === 'queued' || run.state === 'running');

/** The run chosen in the URL (?run=id), live while it runs, then its decisions; and the history of runs. */
export function RetentionRuns({ project, manage, reloadKey }: { project: string; manage: boolean; reloadKey: number }) {
  const { t, dateTime, number } = useI18n();
  const { query } = useLocation();
  const chosen = Number(query.get('run')) || undefined;
  const base = `/projects/${seg(project)}/retention/runs`;
  const [historyKey, setHistoryKey] = useState(0);

  const columns: Column<RetentionRun>[] = [
    {
      key: 'id',
      header: t('retention.runs.col.run'),
      render: (r) => (
        <button type="button" className="link pt-nowrap" onClick={() => setQuery({ run: r.id, 'ri.page': undefined, outcome: undefined })} aria-label={t('retention.runs.showLabel', { id: r.id })}>
          {t('retention.runs.runId', { id: r.id })}
        </button>
      ),
    },
    { key: 'kind', header: t('retention.runs.col.kind'), render: (r) => (r.dryRun ? t('retention.runs.dry') : t('retention.runs.real')) },
    { key: 'trigger', header: t('retention.runs.col.trigger'), render: (r) => t(`retention.trigger.${r.trigger}`) },
    { key: 'state', header: t('common.status'), render: (r) => <StateBadge state={r.state} /> },
    {
      key: 'figures',
      header: t('retention.runs.col.figures'),
      render: (r) =>
        r.progress
          ? t(r.dryRun ? 'retention.runs.figuresDry' : 'retention.runs.figures', {
              retained: number(r.progress.retained ?? 0),
              deleted: number(r.progress.deleted ?? 0),
              total: number(r.progress.total ?? 0),
            })
          : '—',
    },
    { key: 'created', header: t('retention.runs.col.started'), render: (r) => dateTime(r.startedAt ?? r.createdAt) },
    { key: 'finished', header: t('retention.runs.col.finished'), render: (r) => dateTime(r.finishedAt) },
  ];

  return (
    <>
      {chosen !== undefined && <RunPanel key={chosen} base={base} id={chosen} manage={manage} onChanged={() => setHistoryKey((k) => k + 1)} />}
      <h3>{t('retention.runs.title')}</h3>
      <DataTable<RetentionRun>
        caption={t('retention.runs.caption', { project })}
        columns={columns}
        rowKey={(r) => String(r.id)}
        queryPrefix="rr."
        reloadKey={`${reloadKey}:${historyKey}`}
        load={({ page, pageSize }, signal) => api.get<Page<RetentionRun>>(base, { page, pageSize }, signal)}
        empty={<EmptyState title={t('retention.runs.empty')}>{manage && <p>{t('retention.runs.emptyHint')}</p>}</EmptyState>}
      />
    </>
  );
}

/** One run: its progress, polled every second while queued or running; then what it decided, artifact by artifact. */
function RunPanel({ base, id, manage, onChanged }: { base: string; id: number; manage: boolean; onChanged: () => void }) {
  const { t, dateTime, number } = useI18n();
  const { query } = useLocation();
  const run = useApi((signal) => api.get<RetentionRunDetail>(`${base}/${id}`, undefined, signal), [base, id]);
  const running = live(run.data);
  const wasRunning = useRef(false);
  usePoll(running, 1000, run.reload);
  useEffect(() => {
    // Finished while watched: the history's figures changed too.
    if (wasRunning.current && !running) onChanged();
    wasRunning.current = running;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [running]);
  const cancel = useAction();
  const panel = useRef<HTMLElement>(null);
  // A run just started (or picked from the history) is below the policy: bring it into view.
  useEffect(() => panel.current?.scrollIntoView({ block: 'nearest' }), []);
  const outcome = OUTCOMES.find((o) => o === query.get('outcome'));

  const columns: Column<RetentionItem>[] = [
    { key: 'repository', header: t('retention.items.col.repository'), render: (i) => <code>{i.repository}</code> },
    { key: 'digest', header: t('retention.items.col.digest'), render: (i) => <code className="pt-nowrap" title={i.digest}>{i.digest.replace(/^(sha256:)?(.{12}).*$/, '$1$2…')}</code> },
    { key: 'tags', header: t('retention.items.col.tags'), render: (i) => (i.tags.length ? <span className="pt-badges">{i.tags.map((tag) => <code key={tag} className="badge">{tag}</code>)}</span> : <span className="muted">{t('retention.items.untagged')}</span>) },
    { key: 'outcome', header: t('retention.items.col.outcome'), render: (i) => <OutcomeBadge outcome={i.outcome} /> },
    {
      key: 'rule',
      header: t('retention.items.col.rule'),
      render: (i) => (
        <>
          {i.basis === 'rule' && i.rule !== null ? t('retention.items.byRule', { n: i.rule }) : i.basis === 'immutable' && i.rule !== null ? t('retention.items.byImmutable', { n: i.rule }) : i.basis ? basisText(t, i.basis) : '—'}
          {/* The server's reason is English prose; shown only when the basis is not one of those worded above. */}
          {i.reason && !KNOWN_BASES.includes(i.basis ?? '') && <div className="muted pt-small">{i.reason}</div>}
          {i.error && <div className="field-error">{i.error}</div>}
        </>
      ),
    },
  ];

  return (
    <section ref={panel} className="card" aria-labelledby="pt-run-h" aria-busy={running}>
      <div className="pt-head">
        <h3 id="pt-run-h">{run.data?.dryRun ? t('retention.run.titleDry', { id }) : t('retention.run.title', { id })}</h3>
        <button type="button" onClick={() => setQuery({ run: undefined, 'ri.page': undefined, outcome: undefined })}>
          {t('common.close')}
        </button>
      </div>
      {run.error !== undefined && !run.loading ? (
        <ErrorState error={run.error} retry={run.reload} />
      ) : !run.data ? (
        <Loading />
      ) : (
        <>
          <dl className="props">
            <dt>{t('common.status')}</dt>
            <dd>
              <StateBadge state={run.data.state} /> {run.data.cancelRequested && running && <span className="muted">{t('retention.run.cancelling')}</span>}
            </dd>
            <dt>{t('retention.runs.col.trigger')}</dt>
            <dd>{t(`retention.trigger.${run.data.trigger}`)}</dd>
            <dt>{t('retention.runs.col.started')}</dt>
            <dd>{dateTime(run.data.startedAt ?? run.data.createdAt)}</dd>
            <dt>{t('retention.runs.col.finished')}</dt>
            <dd>{dateTime(run.data.finishedAt)}</dd>
            {Object.keys(run.data.outcomes).length > 0 && (
              <>
                <dt>{t('retention.run.outcomes')}</dt>
                <dd>
                  {OUTCOMES.filter((o) => run.data!.outcomes[o]).map((o) => (
                    <span key={o} className="pt-outcome">
                      <OutcomeBadge outcome={o} /> {number(run.data!.outcomes[o] ?? 0)}
                    </span>
                  ))}
                </dd>
              </>
            )}
          </dl>
          {running && (
            <>
              <Progress
                label={
                  run.data.state === 'queued'
                    ? t('retention.run.queued')
                    : t('retention.run.progress', { done: number((run.data.progress?.retained ?? 0) + (run.data.progress?.deleted ?? 0) + (run.data.progress?.failed ?? 0)), total: number(run.data.progress?.total ?? 0) })
                }
                value={(run.data.progress?.retained ?? 0) + (run.data.progress?.deleted ?? 0) + (run.data.progress?.failed ?? 0)}
                max={run.data.progress?.total}
              />
              {manage && !run.data.cancelRequested && (
                <button type="button" disabled={cancel.busy} onClick={() => void cancel.run(() => api.post(`${base}/${id}/cancel`)).then(run.reload)}>
                  {t('retention.run.cancel')}
                </button>
              )}
              {cancel.error !== undefined && <Notice kind="error">{errorMessage(t, cancel.error)}</Notice>}
            </>
          )}
          {run.data.error && <Notice kind="error">{run.data.error}</Notice>}
          {!running && (
            <>
              {run.data.dryRun && run.data.state === 'succeeded' && <Notice kind="info">{t('retention.run.dryNote')}</Notice>}
              <h4>{t('retention.items.title')}</h4>
              <SelectField<'' | RetentionOutcome>
                label={t('retention.items.filter')}
                value={outcome ?? ''}
                onChange={(v) => setQuery({ outcome: v || undefined, 'ri.page': undefined })}
                options={[{ value: '', label: t('retention.items.all') }, ...OUTCOMES.map((o) => ({ value: o, label: t(`retention.outcome.${o}`) }))]}
              />
              <DataTable<RetentionItem>
                caption={t('retention.items.caption', { id })}
                columns={columns}
                rowKey={(i) => `${i.repository}@${i.digest}`}
                queryPrefix="ri."
                reloadKey={outcome}
                load={({ page, pageSize }, signal) => api.get<Page<RetentionItem>>(`${base}/${id}/items`, { page, pageSize, outcome }, signal)}
                empty={<EmptyState title={t('retention.items.empty')} />}
              />
            </>
          )}
          {run.data.log.length > 0 && (
            <details className="pt-details">
              <summary>{t('retention.run.log', { n: run.data.log.length })}</summary>
              <pre>{run.data.log.map((l) => `${dateTime(l.time)}  ${l.level}  ${l.message}`).join('\n')}</pre>
            </details>
          )}
        </>
      )}
    </section>
  );
}

function basisText(t: ReturnType<typeof useI18n>['t'], basis: string): string {
  switch (basis) {
    case 'unselected':
      return t('retention.basis.unselected');
    case 'unretained':
      return t('retention.basis.unretained');
    case 'changed':
      return t('retention.basis.changed');
    case 'immutable':
      return t('retention.basis.immutable');
    default:
      return basis;
  }
}

/** An outcome in words (kept / deleted / would be deleted …), coloured too but never only coloured. */
export function OutcomeBadge({ outcome }: { outcome: RetentionOutcome }) {
  const { t } = useI18n();
  const kind = outcome === 'retained' ? 'badge-ok' : outcome === 'failed' ? 'badge-bad' : outcome === 'pending' ? '' : 'badge-warn';
  return <span className={`badge ${kind}`}>{t(`retention.outcome.${outcome}`)}</span>;
}
