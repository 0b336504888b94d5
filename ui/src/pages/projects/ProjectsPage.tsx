import { useState, type FormEvent } from 'react';
import { ApiError, api, type Page } from '../../api/client';
import { PROJECT_NAME, type CreateProject, type Project, type ProjectSummary, type RegistryEndpoint } from '../../api/projects';
import { Link, navigate } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { registryHost, useSession } from '../../app/session';
import { CopyButton } from '../../components/CopyButton';
import { DataTable, type Column } from '../../components/DataTable';
import { Dialog } from '../../components/Dialog';
import { CheckboxField, SelectField, TextField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { QuotaField, QuotaUsage, quotaBytes, type QuotaInput } from './QuotaField';

/** The projects the caller may see, searched and sorted by the server; "New project" for those who may create one. */
export function ProjectsPage(_props: PageProps) {
  const { t, dateTime, number } = useI18n();
  const { user, info } = useSession();
  const [creating, setCreating] = useState(false);
  const canCreate = Boolean(user?.isAdmin || info?.projectCreation === 'everyone');
  const pushCommand = `docker push ${registryHost(info)}/${t('projects.empty.placeholder')}`;

  const columns: Column<ProjectSummary>[] = [
    { key: 'name', header: t('common.name'), sort: 'name', render: (p) => <Link to={`/projects/${encodeURIComponent(p.name)}`}>{p.name}</Link> },
    {
      key: 'access',
      header: t('projects.col.access'),
      render: (p) => <span className={p.public ? 'badge badge-ok' : 'badge'}>{p.public ? t('projects.public') : t('projects.private')}</span>,
    },
    { key: 'repositories', header: t('projects.col.repositories'), className: 'num', render: (p) => number(p.repositoryCount) },
    { key: 'usage', header: t('projects.col.usage'), sort: 'usage', render: (p) => <QuotaUsage used={p.usageBytes} limit={p.quotaBytes} /> },
    {
      key: 'proxy',
      header: t('projects.col.type'),
      render: (p) =>
        p.proxyCache ? (
          <>
            <span className="badge badge-warn">{t('projects.type.proxy')}</span>
            <div className="muted">{t('projects.proxyCache.of', { registry: p.proxyCache.registry })}</div>
          </>
        ) : (
          <span className="muted">{t('projects.type.regular')}</span>
        ),
    },
    { key: 'created', header: t('common.created'), sort: 'createdAt', render: (p) => dateTime(p.createdAt) },
  ];

  return (
    <>
      <PageHeader
        title={t('projects.title')}
        actions={
          canCreate && (
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              {t('projects.new')}
            </button>
          )
        }
      />
      <div className="repo-stack">
        <DataTable
          caption={t('projects.caption')}
          columns={columns}
          rowKey={(p) => p.name}
          defaultSort="name"
          filterLabel={t('projects.filter')}
          load={(params, signal) => api.get<Page<ProjectSummary>>('/projects', { ...params }, signal)}
          empty={
            <EmptyState title={t('projects.empty.title')}>
              {canCreate ? (
                <>
                  <p>{t('projects.empty.create')}</p>
                  <p>
                    <button type="button" className="primary" onClick={() => setCreating(true)}>
                      {t('projects.new')}
                    </button>
                  </p>
                  <p>{t('projects.empty.thenPush')}</p>
                  <p className="copyable">
                    <code>{pushCommand}</code>
                    <CopyButton text={pushCommand} what={t('projects.empty.pushWhat')} />
                  </p>
                </>
              ) : (
                <p>{t('projects.empty.ask')}</p>
              )}
            </EmptyState>
          }
        />
      </div>
      <CreateProjectDialog open={creating} onClose={() => setCreating(false)} admin={Boolean(user?.isAdmin)} />
    </>
  );
}

/** The "New project" form; a created project opens at once. Proxy-cache projects are for administrators. */
function CreateProjectDialog({ open, onClose, admin }: { open: boolean; onClose: () => void; admin: boolean }) {
  const { t } = useI18n();
  const [name, setName] = useState('');
  const [isPublic, setPublic] = useState(false);
  const [quota, setQuota] = useState<QuotaInput>({ amount: '', unit: 'GiB' });
  const [registry, setRegistry] = useState('');
  const [freshness, setFreshness] = useState('');
  const [checked, setChecked] = useState(false);
  const action = useAction();
  const registries = useApi(
    (signal) => (admin && open ? api.get<Page<RegistryEndpoint>>('/registries', { pageSize: 500 }, signal) : Promise.resolve(undefined)),
    [admin, open],
  );

  const nameError = !PROJECT_NAME.test(name) || name.length > 128 ? t('projects.create.nameInvalid') : undefined;
  const bytes = quotaBytes(quota);
  const quotaError = bytes === undefined ? t('projects.quota.invalid') : undefined;
  const freshnessValue = freshness.trim() === '' ? undefined : Number(freshness);
  const freshnessError = freshnessValue !== undefined && (!Number.isInteger(freshnessValue) || freshnessValue < 0 || freshnessValue > 31_536_000) ? t('projects.create.freshnessInvalid') : undefined;

  const close = () => {
    setName('');
    setPublic(false);
    setQuota({ amount: '', unit: 'GiB' });
    setRegistry('');
    setFreshness('');
    setChecked(false);
    action.clear();
    onClose();
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setChecked(true);
    if (nameError || quotaError || freshnessError) return;
    const body: CreateProject = { name, public: isPublic, quotaBytes: bytes ?? null };
    if (registry) body.proxyCache = { registry, ...(freshnessValue !== undefined ? { freshness: freshnessValue } : {}) };
    const ok = await action.run(() => api.post<Project>('/projects', body));
    if (ok) {
      close();
      navigate(`/projects/${encodeURIComponent(name)}`);
    }
  };

  const conflict = action.error instanceof ApiError && action.error.status === 409;
  return (
    <Dialog open={open} title={t('projects.create.title')} onClose={close}>
      <form onSubmit={submit} noValidate>
        <TextField label={t('projects.create.name')} value={name} onChange={(v) => setName(v.trim())} required maxLength={128} autoComplete="off" hint={t('projects.create.nameHint')} error={checked ? nameError : undefined} />
        <CheckboxField label={t('projects.create.public')} checked={isPublic} onChange={setPublic} hint={t('projects.create.publicHint')} />
        <QuotaField value={quota} onChange={setQuota} error={checked ? quotaError : undefined} />
        {admin && (
          <fieldset>
            <legend>{t('projects.create.proxyLegend')}</legend>
            {registries.error !== undefined ? (
              <p className="field-error">{errorMessage(t, registries.error)}</p>
            ) : registries.data && registries.data.items.length === 0 ? (
              <p className="field-hint">
                {t('projects.create.noRegistries')} <Link to="/admin/registries">{t('projects.create.addRegistry')}</Link>
              </p>
            ) : (
              <SelectField
                label={t('projects.create.registry')}
                value={registry}
                onChange={setRegistry}
                hint={t('projects.create.registryHint')}
                options={[{ value: '', label: t('projects.create.noProxy') }, ...(registries.data?.items ?? []).map((r) => ({ value: r.name, label: `${r.name} (${r.url})` }))]}
              />
            )}
            {registry && <TextField label={t('projects.create.freshness')} type="number" value={freshness} onChange={setFreshness} hint={t('projects.create.freshnessHint')} error={checked ? freshnessError : undefined} />}
          </fieldset>
        )}
        {action.error !== undefined && (
          <p className="field-error" role="alert">
            {conflict ? t('projects.create.exists', { name }) : errorMessage(t, action.error)}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={close}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={action.busy}>
            {t('common.create')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
