// Replication rules (push to or pull from a registry endpoint): the list with each rule in words,
// create / change / delete, "Run now", and the executions of the chosen rule, refreshing while one runs.
import { useCallback, useState } from 'react';
import type { PageProps } from '../../app/routes';
import { api, seg, type Page } from '../../api/client';
import { executionFigures, isActive, type ReplicationExecution, type ReplicationRule, type Selector } from '../../api/operations';
import { Link, navigate, setQuery, useLocation } from '../../app/router';
import { DataTable, type Column, type ListParams } from '../../components/DataTable';
import { ConfirmDialog } from '../../components/Dialog';
import { useAction, usePoll } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, Notice, errorMessage } from '../../components/states';
import { useI18n, type Translate } from '../../i18n/index';
import { ReplicationRuleForm } from './ReplicationRuleForm';
import { elapsedSeconds, useDuration, useNow } from './operations-shared';
import { StateBadge } from '../../components/StateBadge';

/** The rule in the reader's language: where, what, how names map, when. */
export function ruleWords(t: Translate, rule: ReplicationRule): string {
  const list = (selectors: Selector[]) => selectors.map((s) => (s.exclude ? t('replication.words.not', { pattern: s.pattern }) : s.pattern)).join(t('replication.words.and'));
  const where = rule.direction === 'push' ? t('replication.words.push', { registry: rule.registry }) : t('replication.words.pull', { registry: rule.registry });
  const repositories = rule.filters.repositories.length ? t('replication.words.repositories', { list: list(rule.filters.repositories) }) : t('replication.words.everyRepository');
  const tags = rule.filters.tags.length ? t('replication.words.tags', { list: list(rule.filters.tags) }) : t('replication.words.everyTag');
  const types = rule.filters.artifactTypes?.length ? t('replication.words.types', { list: rule.filters.artifactTypes.join(', ') }) : '';
  const d = rule.destination;
  const names =
    d.mode === 'keep'
      ? t('replication.words.keep')
      : d.mode === 'replace'
        ? t('replication.words.replace', { namespace: d.namespace ?? '' })
        : d.namespace
          ? t('replication.words.flattenUnder', { levels: d.levels ?? 1, namespace: d.namespace })
          : t('replication.words.flatten', { levels: d.levels ?? 1 });
  const when = rule.trigger === 'manual' ? t('replication.words.manual') : rule.trigger === 'schedule' ? t('replication.words.schedule', { cron: rule.cron ?? '' }) : rule.replicateDeletes ? t('replication.words.eventDeletes') : t('replication.words.event');
  return t('replication.words.rule', { where, what: [repositories, tags, types].filter(Boolean).join(t('replication.words.comma')), names, when });
}

function TriggerText({ rule }: { rule: ReplicationRule }) {
  const { t, dateTime } = useI18n();
  if (rule.trigger === 'schedule')
    return (
      <>
        {t('replication.trigger.schedule')} <code>{rule.cron}</code>
        {rule.nextRunAt && <div className="muted">{t('replication.nextRun', { time: dateTime(rule.nextRunAt) })}</div>}
      </>
    );
  return <>{rule.trigger === 'event' ? t('replication.trigger.event') : t('replication.trigger.manual')}</>;
}

/** The executions of one rule, newest first; reloads itself every 2 s while one of them is queued or running. */
function Executions({ rule, reloadKey }: { rule: string; reloadKey: number }) {
  const { t, dateTime, number, bytes } = useI18n();
  const duration = useDuration();
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);
  usePoll(live, 2000, () => setTick((n) => n + 1));
  const now = useNow(live);
  const load = useCallback(
    async (p: ListParams, signal: AbortSignal) => {
      const page = await api.get<Page<ReplicationExecution>>(`/replication/rules/${seg(rule)}/executions`, { page: p.page, pageSize: p.pageSize }, signal);
      setLive(page.items.some((e) => isActive(e.state)));
      return page;
    },
    [rule],
  );
  const columns: Column<ReplicationExecution>[] = [
    { key: 'id', header: t('replication.executions.id'), render: (e) => <Link to={`/admin/replication/executions/${e.id}`} aria-label={t('replication.executions.open', { id: e.id })}>{t('jobs.number', { id: e.id })}</Link> },
    { key: 'state', header: t('common.status'), render: (e) => <StateBadge state={e.state} cancelRequested={e.cancelRequested} /> },
    { key: 'trigger', header: t('replication.col.trigger'), render: (e) => t(`replication.trigger.${e.trigger}`) },
    { key: 'started', header: t('replication.executions.started'), render: (e) => dateTime(e.startedAt ?? e.createdAt) },
    { key: 'duration', header: t('replication.executions.duration'), className: 'num', render: (e) => duration(elapsedSeconds(e.startedAt, e.finishedAt, now)) },
    {
      key: 'progress',
      header: t('replication.executions.progress'),
      className: 'num',
      render: (e) => {
        const f = executionFigures(e.progress);
        return f ? t('replication.executions.done', { done: number(f.copied + f.skipped + f.diverged + f.deleted + f.failed), total: number(f.total) }) : '—';
      },
    },
    { key: 'copied', header: t('execution.outcome.copied'), className: 'num', render: (e) => number(executionFigures(e.progress)?.copied ?? 0) },
    { key: 'failed', header: t('execution.outcome.failed'), className: 'num', render: (e) => number(executionFigures(e.progress)?.failed ?? 0) },
    { key: 'bytes', header: t('replication.executions.bytes'), className: 'num', render: (e) => bytes(executionFigures(e.progress)?.bytes ?? 0) },
  ];
  return (
    <section aria-labelledby="replication-executions">
      <h2 id="replication-executions">{t('replication.executions.title', { rule })}</h2>
      <DataTable
        caption={t('replication.executions.caption', { rule })}
        columns={columns}
        load={load}
        rowKey={(e) => String(e.id)}
        queryPrefix="ex"
        reloadKey={`${rule}:${tick}:${reloadKey}`}
        empty={<EmptyState title={t('replication.executions.empty')} />}
      />
    </section>
  );
}

export function ReplicationPage(_props: PageProps) {
  const { t } = useI18n();
  const { query } = useLocation();
  const selected = query.get('rule') ?? '';
  const [reloadKey, setReloadKey] = useState(0);
  const [editing, setEditing] = useState<{ rule?: ReplicationRule } | null>(null);
  const [deleting, setDeleting] = useState<ReplicationRule | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const run = useAction();

  const runNow = async (rule: ReplicationRule) => {
    setNotice(null);
    await run.run(async () => {
      const execution = await api.post<ReplicationExecution>(`/replication/rules/${seg(rule.name)}/executions`);
      navigate(`/admin/replication/executions/${execution.id}`);
    });
  };

  const columns: Column<ReplicationRule>[] = [
    {
      key: 'name',
      header: t('common.name'),
      render: (r) => (
        <>
          <strong>{r.name}</strong>
          {r.description && <div className="muted">{r.description}</div>}
        </>
      ),
    },
    { key: 'words', header: t('replication.col.rule'), render: (r) => <span className="ops-words">{ruleWords(t, r)}</span> },
    { key: 'registry', header: t('replication.col.endpoint'), render: (r) => (r.direction === 'push' ? t('replication.col.to', { registry: r.registry }) : t('replication.col.from', { registry: r.registry })) },
    { key: 'trigger', header: t('replication.col.trigger'), render: (r) => <TriggerText rule={r} /> },
    { key: 'enabled', header: t('common.status'), render: (r) => <span className={r.enabled ? 'badge badge-ok' : 'badge'}>{r.enabled ? t('common.enabled') : t('common.disabled')}</span> },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (r) => (
        <div className="ops-actions">
          <button type="button" className="primary" disabled={run.busy} onClick={() => void runNow(r)} aria-label={t('replication.runNowLabel', { name: r.name })}>
            {t('replication.runNow')}
          </button>
          <button type="button" onClick={() => setQuery({ rule: r.name, expage: undefined })} aria-pressed={selected === r.name} aria-label={t('replication.showExecutions', { name: r.name })}>
            {t('replication.executions.button')}
          </button>
          <button type="button" onClick={() => setEditing({ rule: r })} aria-label={t('replication.editLabel', { name: r.name })}>
            {t('common.edit')}
          </button>
          <button type="button" onClick={() => setDeleting(r)} aria-label={t('replication.deleteLabel', { name: r.name })}>
            {t('common.delete')}
          </button>
        </div>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t('replication.title')}
        subtitle={t('replication.subtitle')}
        actions={
          <button type="button" className="primary" onClick={() => setEditing({})}>
            {t('replication.create')}
          </button>
        }
      />
      {notice && <Notice kind="success">{notice}</Notice>}
      {run.error !== undefined && <Notice kind="error">{errorMessage(t, run.error)}</Notice>}
      <DataTable
        caption={t('replication.caption')}
        columns={columns}
        load={(p, signal) => api.get<Page<ReplicationRule>>('/replication/rules', { page: p.page, pageSize: p.pageSize }, signal)}
        rowKey={(r) => r.name}
        reloadKey={reloadKey}
        empty={
          <EmptyState title={t('replication.empty')}>
            <p>
              {t('replication.emptyHint')} <Link to="/admin/registries">{t('replication.form.addRegistry')}</Link>
            </p>
          </EmptyState>
        }
      />
      {selected && <Executions rule={selected} reloadKey={reloadKey} />}
      <ReplicationRuleForm
        open={editing !== null}
        rule={editing?.rule}
        onClose={() => setEditing(null)}
        onSaved={(rule) => {
          setNotice(editing?.rule ? t('replication.saved', { name: rule.name }) : t('replication.created', { name: rule.name }));
          setEditing(null);
          setReloadKey((n) => n + 1);
        }}
      />
      <ConfirmDialog
        open={deleting !== null}
        title={t('replication.delete.title', { name: deleting?.name ?? '' })}
        message={<p>{t('replication.delete.message', { name: deleting?.name ?? '' })}</p>}
        confirmLabel={t('replication.delete.confirm')}
        onConfirm={async () => {
          const name = deleting!.name;
          await api.del(`/replication/rules/${seg(name)}`);
          setNotice(t('replication.deleted', { name }));
          if (selected === name) setQuery({ rule: undefined });
          setReloadKey((n) => n + 1);
        }}
        onClose={() => setDeleting(null)}
      />
    </>
  );
}
