import { api, repoPath, type Page } from '../../../api/client';
import type { ProjectTabProps } from '../../../api/projects';
import type { Repository } from '../../../api/repositories';
import { Link } from '../../../app/router';
import { registryHost, useSession } from '../../../app/session';
import { Copyable } from '../../../components/CopyButton';
import { DataTable, type Column } from '../../../components/DataTable';
import { EmptyState } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

/** A project's repositories, filtered and sorted by the server; when there are none, how to push the first image. */
export function RepositoriesTab({ project }: ProjectTabProps) {
  const { t, number, dateTime } = useI18n();
  const { info } = useSession();
  const host = registryHost(info);
  const placeholder = t('projects.repos.imagePlaceholder');

  const columns: Column<Repository>[] = [
    { key: 'name', header: t('common.name'), sort: 'name', render: (r) => <Link to={`/repositories/${repoPath(r.name)}`}>{r.name}</Link> },
    { key: 'artifacts', header: t('projects.repos.artifacts'), className: 'num', render: (r) => number(r.artifactCount) },
    { key: 'created', header: t('common.created'), sort: 'createdAt', render: (r) => dateTime(r.createdAt) },
  ];

  const empty = project.proxyCache ? (
    <EmptyState title={t('projects.repos.emptyProxy.title')}>
      <p>{t('projects.repos.emptyProxy.text', { registry: project.proxyCache.registry })}</p>
      <Copyable text={`docker pull ${host}/${project.name}/${placeholder}`} what={t('projects.repos.pullWhat')} />
    </EmptyState>
  ) : (
    <EmptyState title={t('projects.repos.empty.title')}>
      <p>{t('projects.repos.empty.text')}</p>
      <p>
        <Copyable text={`docker login ${host}`} what={t('projects.repos.loginWhat')} />
      </p>
      <p>
        <Copyable text={`docker tag ${placeholder} ${host}/${project.name}/${placeholder}`} what={t('projects.repos.tagWhat')} />
      </p>
      <p>
        <Copyable text={`docker push ${host}/${project.name}/${placeholder}`} what={t('projects.repos.pushWhat')} />
      </p>
    </EmptyState>
  );

  return (
    <section className="repo-stack" aria-labelledby="project-repositories">
      <h2 id="project-repositories">{t('projects.tab.repositories')}</h2>
      <DataTable
        caption={t('projects.repos.caption', { project: project.name })}
        columns={columns}
        rowKey={(r) => r.name}
        defaultSort="name"
        filterLabel={t('projects.repos.filter')}
        load={(params, signal) => api.get<Page<Repository>>('/repositories', { project: project.name, ...params }, signal)}
        empty={empty}
      />
    </section>
  );
}
