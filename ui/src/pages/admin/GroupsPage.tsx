import { api, seg, type Page } from '../../api/client';
import type { Group, GroupDetail } from '../../api/admin';
import { Link, useLocation } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { useSession } from '../../app/session';
import { DataTable, type Column } from '../../components/DataTable';
import { useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, ErrorState, Loading } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { SimpleTable, SourceBadge, SourceFilter } from './parts';

const SOURCES = ['ldap', 'oidc'] as const;
const ROLES = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const;
type Role = (typeof ROLES)[number];

/** `/admin/groups`: the groups of the identity sources; `/admin/groups/:id`: one group's members and project roles. */
export function GroupsPage({ params }: PageProps) {
  return params.id ? <GroupDetailView id={params.id} /> : <GroupList />;
}

function GroupList() {
  const { t, dateTime, number } = useI18n();
  const { authConfig } = useSession();
  const { query } = useLocation();
  const source = SOURCES.find((s) => s === query.get('source'));
  const columns: Column<Group>[] = [
    { key: 'name', header: t('groups.col.name'), render: (g) => <Link to={`/admin/groups/${g.id}`}>{g.name}</Link> },
    { key: 'source', header: t('users.col.source'), render: (g) => <SourceBadge source={g.source} /> },
    { key: 'externalId', header: t('groups.col.externalId'), render: (g) => <code>{g.externalId}</code> },
    { key: 'members', header: t('groups.col.members'), className: 'num', render: (g) => number(g.members) },
    { key: 'created', header: t('groups.col.known'), render: (g) => dateTime(g.createdAt) },
  ];
  return (
    <>
      <PageHeader title={t('groups.title')} subtitle={t('groups.subtitle')} />
      <DataTable<Group>
        caption={t('groups.caption')}
        columns={columns}
        load={(params, signal) => api.get<Page<Group>>('/groups', { ...params, source }, signal)}
        rowKey={(g) => String(g.id)}
        filterLabel={t('groups.filter')}
        reloadKey={source ?? ''}
        toolbar={<SourceFilter label={t('groups.sourceFilter')} sources={SOURCES} source={source} />}
        empty={
          <EmptyState title={t('groups.empty')}>
            <p>{authConfig.mode === 'local' ? t('groups.emptyLocal') : t('groups.emptyHow')}</p>
          </EmptyState>
        }
      />
    </>
  );
}

function GroupDetailView({ id }: { id: string }) {
  const { t, dateTime, number } = useI18n();
  const group = useApi((signal) => api.get<GroupDetail>(`/groups/${seg(id)}`, undefined, signal), [id]);
  const crumbs = [{ label: t('groups.title'), to: '/admin/groups' }];
  if (group.error !== undefined && !group.loading) {
    return (
      <>
        <PageHeader title={t('groups.detailFallback')} crumbs={crumbs} />
        <ErrorState error={group.error} retry={group.reload} />
      </>
    );
  }
  const g = group.data;
  if (!g) return <Loading />;
  return (
    <>
      <PageHeader title={t('groups.detailTitle', { name: g.name })} crumbs={crumbs} />
      <section className="card">
        <dl className="props">
          <dt>{t('users.col.source')}</dt>
          <dd>
            <SourceBadge source={g.source} />
          </dd>
          <dt>{g.source === 'ldap' ? t('groups.dn') : t('groups.claimValue')}</dt>
          <dd>
            <code>{g.externalId}</code>
          </dd>
          <dt>{t('groups.col.members')}</dt>
          <dd>{number(g.memberCount)}</dd>
          <dt>{t('groups.col.known')}</dt>
          <dd>{dateTime(g.createdAt)}</dd>
        </dl>
      </section>
      <h2>{t('groups.members')}</h2>
      {g.members.length === 0 ? (
        <EmptyState title={t('groups.noMembers')}>
          <p>{t('groups.noMembersHow')}</p>
        </EmptyState>
      ) : (
        <>
          {g.memberCount > g.members.length && <p className="muted">{t('groups.membersCut', { shown: number(g.members.length), total: number(g.memberCount) })}</p>}
          <SimpleTable
            caption={t('groups.membersCaption', { name: g.name })}
            rows={g.members}
            rowKey={(m) => m.username}
            columns={[
              { key: 'username', header: t('users.col.username'), render: (m) => m.username },
              { key: 'email', header: t('users.col.email'), render: (m) => m.email ?? '—' },
              { key: 'last', header: t('users.col.lastLogin'), render: (m) => (m.lastLoginAt ? dateTime(m.lastLoginAt) : t('common.never')) },
            ]}
          />
        </>
      )}
      <h2>{t('groups.projects')}</h2>
      {g.projects.length === 0 ? (
        <EmptyState title={t('groups.noProjects')}>
          <p>{t('groups.noProjectsHow')}</p>
        </EmptyState>
      ) : (
        <SimpleTable
          caption={t('groups.projectsCaption', { name: g.name })}
          rows={g.projects}
          rowKey={(p) => p.project}
          columns={[
            { key: 'project', header: t('groups.col.project'), render: (p) => <Link to={`/projects/${seg(p.project)}`}>{p.project}</Link> },
            { key: 'role', header: t('groups.col.role'), render: (p) => <span className="badge">{ROLES.includes(p.role as Role) ? t(`groups.role.${p.role as Role}`) : p.role}</span> },
            { key: 'since', header: t('groups.col.since'), render: (p) => dateTime(p.createdAt) },
          ]}
        />
      )}
    </>
  );
}
