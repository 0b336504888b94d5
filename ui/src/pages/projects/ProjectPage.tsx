import type { ComponentType } from 'react';
import { api, seg } from '../../api/client';
import type { Permission, Project, ProjectTabProps } from '../../api/projects';
import type { PageProps } from '../../app/routes';
import { useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { Tabs } from '../../components/Tabs';
import { EmptyState, ErrorState, Loading } from '../../components/states';
import { useI18n, type MessageKey } from '../../i18n/index';
import { QuotaUsage } from './QuotaField';
import { AuditTab } from './tabs/AuditTab';
import { MembersTab } from './tabs/MembersTab';
import { PoliciesTab } from './tabs/PoliciesTab';
import { ProxyCacheTab } from './tabs/ProxyCacheTab';
import { RepositoriesTab } from './tabs/RepositoriesTab';
import { RobotsTab } from './tabs/RobotsTab';
import { SettingsTab } from './tabs/SettingsTab';
import { WebhooksTab } from './tabs/WebhooksTab';

interface TabSpec {
  id: string;
  label: MessageKey;
  component: ComponentType<ProjectTabProps>;
  /** Shown when the caller has one of these permissions (the API would refuse the tab's reads otherwise). */
  needs: Permission[];
  onlyProxy?: boolean;
}

/** The project's tabs in order; the first one the caller may see is the default. */
const TABS: TabSpec[] = [
  { id: 'repositories', label: 'projects.tab.repositories', component: RepositoriesTab, needs: ['repository.list'] },
  { id: 'members', label: 'projects.tab.members', component: MembersTab, needs: ['member.list'] },
  { id: 'robots', label: 'projects.tab.robots', component: RobotsTab, needs: ['robot.list'] },
  { id: 'policies', label: 'projects.tab.policies', component: PoliciesTab, needs: ['member.list'] },
  { id: 'webhooks', label: 'projects.tab.webhooks', component: WebhooksTab, needs: ['project.update'] },
  { id: 'proxy-cache', label: 'projects.tab.proxyCache', component: ProxyCacheTab, needs: ['project.read'], onlyProxy: true },
  { id: 'audit', label: 'projects.tab.audit', component: AuditTab, needs: ['log.list'] },
  { id: 'settings', label: 'projects.tab.settings', component: SettingsTab, needs: ['project.update', 'project.delete'] },
];

/** A project: its summary, and a tab per area the caller may see (each tab has its own address). */
export function ProjectPage({ params }: PageProps) {
  const { t } = useI18n();
  const name = params.project ?? '';
  const project = useApi((signal) => api.get<Project>(`/projects/${seg(name)}`, undefined, signal), [name]);
  const base = `/projects/${encodeURIComponent(name)}`;
  const crumbs = [
    { label: t('projects.title'), to: '/projects' },
    { label: name, to: base },
  ];

  if (!project.data) {
    return (
      <>
        <PageHeader title={t('projects.project.title', { name })} crumbs={crumbs} />
        {project.error !== undefined && !project.loading ? <ErrorState error={project.error} retry={project.reload} /> : <Loading />}
      </>
    );
  }

  const p = project.data;
  const visible = TABS.filter((tab) => tab.needs.some((n) => p.permissions.includes(n)) && (!tab.onlyProxy || p.proxyCache !== null));
  const current = visible.find((tab) => tab.id === (params.tab ?? visible[0]?.id));
  const Current = current?.component;

  return (
    <>
      <PageHeader title={t('projects.project.title', { name: p.name })} crumbs={crumbs} />
      <ProjectSummaryCard project={p} />
      {visible.length > 0 && (
        <Tabs
          label={t('projects.tabs.label')}
          current={current?.id ?? ''}
          tabs={visible.map((tab, i) => ({ id: tab.id, label: t(tab.label), to: i === 0 ? base : `${base}/${tab.id}` }))}
        />
      )}
      {Current ? (
        <Current project={p} reload={project.reload} />
      ) : (
        <EmptyState title={visible.length === 0 ? t('projects.tabs.none') : t('projects.tabs.unknown')} />
      )}
    </>
  );
}

/** Visibility, quota and usage, repository count, and a proxy cache's upstream, at a glance. */
function ProjectSummaryCard({ project: p }: { project: Project }) {
  const { t, number, dateTime } = useI18n();
  return (
    <section className="card" aria-labelledby="project-summary">
      <h2 id="project-summary" className="visually-hidden">
        {t('projects.summary')}
      </h2>
      <dl className="props projects-summary">
        <dt>{t('projects.col.access')}</dt>
        <dd>
          <span className={p.public ? 'badge badge-ok' : 'badge'}>{p.public ? t('projects.public') : t('projects.private')}</span>{' '}
          <span className="muted">{p.public ? t('projects.publicHint') : t('projects.privateHint')}</span>
        </dd>
        <dt>{t('projects.col.usage')}</dt>
        <dd>
          <QuotaUsage used={p.usageBytes} limit={p.quotaBytes} />
        </dd>
        <dt>{t('projects.col.repositories')}</dt>
        <dd>{number(p.repositoryCount)}</dd>
        {p.proxyCache && (
          <>
            <dt>{t('projects.proxyCache.upstream')}</dt>
            <dd>
              <span className="badge badge-warn">{t('projects.type.proxy')}</span> {p.proxyCache.registry}{' '}
              <span className="muted">{t('projects.proxyCache.freshness', { seconds: number(p.proxyCache.freshness) })}</span>
            </dd>
          </>
        )}
        <dt>{t('common.created')}</dt>
        <dd>{p.createdBy ? t('projects.createdBy', { when: dateTime(p.createdAt), who: p.createdBy }) : dateTime(p.createdAt)}</dd>
      </dl>
    </section>
  );
}
