import { useId, useState, type FormEvent } from 'react';
import { ApiError, api, seg, type Page } from '../../../api/client';
import { ROLES, type Group, type Member, type Role } from '../../../api/project-tabs';
import type { ProjectTabProps } from '../../../api/projects';
import { useSession } from '../../../app/session';
import { DataTable, type Column } from '../../../components/DataTable';
import { ConfirmDialog } from '../../../components/Dialog';
import { SelectField, TextField } from '../../../components/Field';
import { useAction, useApi } from '../../../components/hooks';
import { EmptyState, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

/** Where a member is changed: a user by name, a group by its id. */
function memberPath(project: string, m: Member): string {
  return m.kind === 'group' && m.group ? `/projects/${seg(project)}/member-groups/${m.group.id}` : `/projects/${seg(project)}/members/${seg(m.name)}`;
}

/** A project's members (users, then groups) and their roles; project administrators add, change and remove them. */
export function MembersTab({ project }: ProjectTabProps) {
  const { t, dateTime } = useI18n();
  const manage = project.permissions.includes('member.manage');
  const [reloadKey, setReloadKey] = useState(0);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const roleOptions = ROLES.map((r) => ({ value: r, label: t(`members.role.${r}`) }));

  const changeRole = async (m: Member, role: Role) => {
    setNotice(null);
    try {
      await api.put(memberPath(project.name, m), { role });
      setNotice({ kind: 'success', text: t('members.roleChanged', { name: m.name, role: t(`members.role.${role}`) }) });
    } catch (err) {
      setNotice({ kind: 'error', text: errorMessage(t, err) });
    }
    setReloadKey((k) => k + 1);
  };

  const columns: Column<Member>[] = [
    {
      key: 'name',
      header: t('members.col.name'),
      render: (m) => (
        <>
          <span className="pt-name">{m.name}</span>{' '}
          <span className="badge">{m.kind === 'group' ? t('members.kind.group', { source: m.group?.source ?? '' }) : t('members.kind.user')}</span>
          {m.kind === 'group' && m.group && m.group.externalId !== m.name && <div className="muted pt-small">{m.group.externalId}</div>}
        </>
      ),
    },
    {
      key: 'role',
      header: t('members.col.role'),
      render: (m) =>
        manage ? (
          <select aria-label={t('members.roleOf', { name: m.name })} value={m.role} onChange={(e) => void changeRole(m, e.target.value as Role)}>
            {roleOptions.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        ) : (
          t(`members.role.${m.role}`)
        ),
    },
    { key: 'added', header: t('members.col.added'), render: (m) => dateTime(m.createdAt) },
  ];
  if (manage) {
    columns.push({
      key: 'actions',
      header: t('common.actions'),
      render: (m) => (
        <button type="button" onClick={() => setRemoving(m)} aria-label={t('members.removeLabel', { name: m.name })}>
          {t('members.remove')}
        </button>
      ),
    });
  }

  return (
    <section aria-labelledby="pt-members-h">
      <h2 id="pt-members-h">{t('members.title')}</h2>
      <p className="muted">{t('members.intro')}</p>
      {manage && <AddMember project={project.name} roleOptions={roleOptions} onAdded={(text) => { setNotice({ kind: 'success', text }); setReloadKey((k) => k + 1); }} />}
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <DataTable<Member>
        caption={t('members.caption', { project: project.name })}
        columns={columns}
        rowKey={(m) => `${m.kind}:${m.group?.id ?? m.name}`}
        queryPrefix="m."
        reloadKey={reloadKey}
        load={({ page, pageSize }, signal) => api.get<Page<Member>>(`/projects/${seg(project.name)}/members`, { page, pageSize }, signal)}
        empty={<EmptyState title={t('members.empty')} />}
      />
      <ConfirmDialog
        open={removing !== null}
        title={t('members.removeTitle')}
        message={removing ? t(removing.kind === 'group' ? 'members.removeGroupConfirm' : 'members.removeConfirm', { name: removing.name, project: project.name }) : ''}
        confirmLabel={t('members.remove')}
        onConfirm={async () => {
          if (!removing) return;
          await api.del(memberPath(project.name, removing));
          setNotice({ kind: 'success', text: t('members.removed', { name: removing.name }) });
          setReloadKey((k) => k + 1);
        }}
        onClose={() => setRemoving(null)}
      />
    </section>
  );
}

/** The "add a member" form: a user by name, or a group by name / LDAP DN (administrators get suggestions from the known groups). */
function AddMember({ project, roleOptions, onAdded }: { project: string; roleOptions: { value: Role; label: string }[]; onAdded: (text: string) => void }) {
  const { t } = useI18n();
  const { user, authConfig } = useSession();
  // With local accounts only there are no groups to add.
  const groupsExist = authConfig.mode !== 'local';
  const [kind, setKind] = useState<'user' | 'group'>('user');
  const [name, setName] = useState('');
  const [source, setSource] = useState<'' | 'ldap' | 'oidc'>('');
  const [role, setRole] = useState<Role>('developer');
  const action = useAction();
  const groupInput = useId();
  const listId = useId();
  // Only administrators may list groups; others type the name.
  const groups = useApi(
    (signal) => (user?.isAdmin && kind === 'group' ? api.get<Page<Group>>('/groups', { q: name.trim() || undefined, pageSize: 20 }, signal) : Promise.resolve(undefined)),
    [user?.isAdmin, kind, name],
  );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    const body = kind === 'user' ? { username: trimmed, role } : { group: trimmed, role, ...(source ? { source } : {}) };
    const ok = await action.run(() =>
      api.post(`/projects/${seg(project)}/members`, body).catch((err: unknown) => {
        // A 404 here names no hidden thing: the user or group does not exist. Say which.
        if (err instanceof ApiError && err.status === 404) throw new Error(t(kind === 'user' ? 'members.add.noUser' : 'members.add.noGroup', { name: trimmed }));
        throw err;
      }),
    );
    if (ok) {
      setName('');
      onAdded(t('members.added', { name: trimmed, role: t(`members.role.${role}`) }));
    }
  };

  return (
    <form className="card pt-form" onSubmit={submit} aria-labelledby={`${listId}-h`}>
      <h3 id={`${listId}-h`}>{t('members.add.title')}</h3>
      <div className="pt-row">
        {groupsExist && (
          <SelectField<'user' | 'group'>
            label={t('members.add.kind')}
            value={kind}
            onChange={setKind}
            options={[
              { value: 'user', label: t('members.kind.user') },
              { value: 'group', label: t('members.add.kindGroup') },
            ]}
          />
        )}
        {kind === 'user' ? (
          <TextField label={t('members.add.username')} value={name} onChange={setName} required maxLength={255} autoComplete="off" />
        ) : (
          <div className="field">
            <label htmlFor={groupInput}>{t('members.add.group')}</label>
            <input id={groupInput} value={name} onChange={(e) => setName(e.target.value)} required maxLength={1024} autoComplete="off" list={listId} aria-describedby={`${groupInput}-hint`} />
            <datalist id={listId}>
              {groups.data?.items.map((g) => (
                <option key={g.id} value={g.source === 'ldap' ? g.externalId : g.name}>
                  {`${g.name} (${g.source})`}
                </option>
              ))}
            </datalist>
            <p className="field-hint" id={`${groupInput}-hint`}>
              {t('members.add.groupHint')}
            </p>
          </div>
        )}
        {kind === 'group' && (
          <SelectField<'' | 'ldap' | 'oidc'>
            label={t('members.add.source')}
            value={source}
            onChange={setSource}
            options={[
              { value: '', label: t('members.add.sourceAny') },
              { value: 'ldap', label: t('members.source.ldap') },
              { value: 'oidc', label: t('members.source.oidc') },
            ]}
          />
        )}
        <SelectField<Role> label={t('members.col.role')} value={role} onChange={setRole} options={roleOptions} />
      </div>
      {action.error !== undefined && <Notice kind="error">{action.error instanceof ApiError ? errorMessage(t, action.error) : String((action.error as Error).message)}</Notice>}
      <button type="submit" className="primary" disabled={action.busy || !name.trim()}>
        {t('members.add.submit')}
      </button>
    </form>
  );
}
