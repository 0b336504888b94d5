import { useState } from 'react';
import { ApiError, api, seg } from '../../../api/client';
import type { RetentionPolicy, RetentionRule, RetentionRun } from '../../../api/project-tabs';
import type { ProjectTabProps } from '../../../api/projects';
import { setQuery } from '../../../app/router';
import { ConfirmDialog } from '../../../components/Dialog';
import { useAction, useApi } from '../../../components/hooks';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../../components/states';
import { useI18n, type Translate } from '../../../i18n/index';
import { ImmutabilitySection } from './ImmutabilitySection';
import { RetentionEditor } from './RetentionEditor';
import { RetentionRuns } from './RetentionRuns';

/** A retention rule in the reader's language (the API's `descriptions` are English only). */
export function ruleInWords(t: Translate, rule: RetentionRule): string {
  const r = rule.retain;
  const retain =
    r.kind === 'latestPushed'
      ? t('retention.words.latestPushed', { n: r.count })
      : r.kind === 'latestPulled'
        ? t('retention.words.latestPulled', { n: r.count })
        : r.kind === 'pushedWithinDays'
          ? t('retention.words.pushedWithinDays', { n: r.days })
          : r.kind === 'pulledWithinDays'
            ? t('retention.words.pulledWithinDays', { n: r.days })
            : t('retention.words.always');
  return t(rule.untagged ? 'retention.words.ruleUntagged' : 'retention.words.rule', {
    retain,
    repositories: t(rule.repositories.exclude ? 'retention.words.reposNot' : 'retention.words.repos', { pattern: rule.repositories.pattern }),
    tags: t(rule.tags.exclude ? 'retention.words.tagsNot' : 'retention.words.tags', { pattern: rule.tags.pattern }),
  });
}

/** Tag retention (policy, dry runs, runs) and tag immutability rules of a project. */
export function PoliciesTab({ project }: ProjectTabProps) {
  const { t, dateTime } = useI18n();
  const manage = project.permissions.includes('project.update');
  const canRead = manage || project.permissions.includes('member.list');
  const base = `/projects/${seg(project.name)}/retention`;
  const policy = useApi(
    (signal) =>
      canRead
        ? api.get<RetentionPolicy>(base, undefined, signal).catch((err: unknown) => {
            // The project exists (its page is shown): a 404 here means it has no policy yet.
            if (err instanceof ApiError && err.status === 404) return null;
            throw err;
          })
        : Promise.resolve(null),
    [project.name, canRead],
  );
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [runsKey, setRunsKey] = useState(0);
  const [confirmRun, setConfirmRun] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const start = useAction();

  const startRun = async (dryRun: boolean) => {
    let run: RetentionRun | undefined;
    const ok = await start.run(async () => {
      run = await api.post<RetentionRun>(`${base}/runs`, { dryRun });
    });
    if (ok && run) {
      setRunsKey((k) => k + 1);
      setQuery({ run: run.id, 'ri.page': undefined });
    }
  };

  const current = policy.data;
  return (
    <>
      <section aria-labelledby="pt-retention-h">
        <h2 id="pt-retention-h">{t('retention.title')}</h2>
        <p className="muted">{t('retention.intro')}</p>
        {!canRead ? (
          <Notice kind="info">{t('retention.noAccess')}</Notice>
        ) : policy.error !== undefined && !policy.loading ? (
          <ErrorState error={policy.error} retry={policy.reload} />
        ) : current === undefined ? (
          <Loading />
        ) : editing ? (
          <RetentionEditor
            project={project.name}
            initial={current}
            onCancel={() => setEditing(false)}
            onSaved={() => {
              setEditing(false);
              setSaved(t('retention.saved'));
              policy.reload();
            }}
          />
        ) : (
          <>
            {saved && <Notice kind="success">{saved}</Notice>}
            {current === null || current.rules.length === 0 ? (
              <EmptyState title={t('retention.none')}>{manage && <p>{t('retention.noneHint')}</p>}</EmptyState>
            ) : (
              <div className="card">
                <h3>{t('retention.rules', { n: current.rules.length })}</h3>
                <ol className="pt-rules">
                  {current.rules.map((rule, i) => (
                    <li key={i}>{ruleInWords(t, rule)}</li>
                  ))}
                </ol>
                <dl className="props">
                  <dt>{t('retention.schedule')}</dt>
                  <dd>{current.cron ? <code>{current.cron}</code> : t('retention.manualOnly')}</dd>
                  {current.nextRunAt && (
                    <>
                      <dt>{t('retention.nextRun')}</dt>
                      <dd>{dateTime(current.nextRunAt)}</dd>
                    </>
                  )}
                  <dt>{t('retention.updated')}</dt>
                  <dd>{t('retention.updatedBy', { time: dateTime(current.updatedAt), who: current.updatedBy ?? t('common.unknown') })}</dd>
                </dl>
              </div>
            )}
            {manage && (
              <div className="toolbar">
                <button type="button" className={current ? '' : 'primary'} onClick={() => { setSaved(null); setEditing(true); }}>
                  {current ? t('retention.edit') : t('retention.create')}
                </button>
                {current && current.rules.length > 0 && (
                  <>
                    <button type="button" className="primary" disabled={start.busy} onClick={() => void startRun(true)}>
                      {t('retention.dryRun')}
                    </button>
                    <button type="button" disabled={start.busy} onClick={() => setConfirmRun(true)}>
                      {t('retention.runNow')}
                    </button>
                  </>
                )}
                {current && (
                  <button type="button" onClick={() => setDeleting(true)}>
                    {t('retention.delete')}
                  </button>
                )}
              </div>
            )}
            {start.error !== undefined && <Notice kind="error">{errorMessage(t, start.error)}</Notice>}
            <RetentionRuns project={project.name} manage={manage} reloadKey={runsKey} />
          </>
        )}
        <ConfirmDialog
          open={confirmRun}
          title={t('retention.runTitle')}
          message={t('retention.runConfirm', { project: project.name })}
          confirmLabel={t('retention.runNow')}
          onConfirm={() => startRun(false).then(() => undefined)}
          onClose={() => setConfirmRun(false)}
        />
        <ConfirmDialog
          open={deleting}
          title={t('retention.deleteTitle')}
          message={t('retention.deleteConfirm', { project: project.name })}
          confirmLabel={t('retention.delete')}
          onConfirm={async () => {
            await api.del(base);
            setSaved(t('retention.deleted'));
            policy.reload();
          }}
          onClose={() => setDeleting(false)}
        />
      </section>
      <ImmutabilitySection project={project} />
    </>
  );
}
