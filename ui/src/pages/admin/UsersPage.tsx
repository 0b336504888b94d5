import { useState, type FormEvent } from 'react';
import { api, seg, type Page } from '../../api/client';
import type { CreatedUser, User, UserDetail, UserSource } from '../../api/admin';
import { setQuery, useLocation } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { useSession } from '../../app/session';
import { Copyable } from '../../components/CopyButton';
import { DataTable, type Column } from '../../components/DataTable';
import { ConfirmDialog, Dialog } from '../../components/Dialog';
import { CheckboxField, SelectField, TextField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { ErrorState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { SourceBadge, generatePassword, SourceFilter } from './parts';

const SOURCES: UserSource[] = ['local', 'ldap', 'oidc'];

/** Administration of users: list with filters, create, administrator flag, password reset, delete, detail. */
export function UsersPage(_props: PageProps) {
  const { t, dateTime } = useI18n();
  const { user: me, refresh } = useSession();
  const { query } = useLocation();
  const source = SOURCES.find((s) => s === query.get('source'));
  const shown = query.get('user');
  const [reloadKey, setReloadKey] = useState(0);
  const [creating, setCreating] = useState(false);
  const [resetting, setResetting] = useState<User | null>(null);
  const [toggling, setToggling] = useState<User | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const reload = () => setReloadKey((k) => k + 1);

  const columns: Column<User>[] = [
    {
      key: 'username',
      sort: 'username',
      header: t('users.col.username'),
      render: (u) => (
        <button type="button" className="link" onClick={() => setQuery({ user: u.username }, { replace: false })} aria-label={t('users.showDetail', { name: u.username })}>
          {u.username}
        </button>
      ),
    },
    { key: 'source', header: t('users.col.source'), render: (u) => <SourceBadge source={u.source} /> },
    { key: 'email', header: t('users.col.email'), render: (u) => u.email ?? <span className="muted">—</span> },
    { key: 'admin', header: t('users.col.admin'), render: (u) => (u.admin ? <span className="badge badge-ok">{t('users.adminBadge')}</span> : <span className="muted">{t('common.no')}</span>) },
    { key: 'created', header: t('common.created'), sort: 'createdAt', className: 'admin-nowrap', render: (u) => dateTime(u.createdAt) },
    { key: 'lastLogin', header: t('users.col.lastLogin'), sort: 'lastLoginAt', render: (u) => (u.source === 'local' ? <span className="muted">{t('users.lastLoginLocal')}</span> : u.lastLoginAt ? dateTime(u.lastLoginAt) : t('common.never')) },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (u) => (
        <div className="toolbar admin-row-actions admin-user-actions">
          <button type="button" onClick={() => setToggling(u)} aria-label={u.admin ? t('users.revokeAdminOf', { name: u.username }) : t('users.grantAdminTo', { name: u.username })}>
            {u.admin ? t('users.revokeAdmin') : t('users.grantAdmin')}
          </button>
          {u.source === 'local' && (
            <button type="button" onClick={() => setResetting(u)} aria-label={t('users.resetPasswordOf', { name: u.username })}>
              {t('users.resetPassword')}
            </button>
          )}
          <button type="button" onClick={() => setDeleting(u)} aria-label={t('users.deleteNamed', { name: u.username })}>
            {t('common.delete')}
          </button>
        </div>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t('users.title')}
        actions={
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('users.create')}
          </button>
        }
        subtitle={t('users.subtitle')}
      />
      {done && <Notice kind="success">{done}</Notice>}
      <DataTable<User>
        caption={t('users.caption')}
        columns={columns}
        load={(params, signal) => api.get<Page<User>>('/users', { ...params, source }, signal)}
        rowKey={(u) => u.username}
        defaultSort="username"
        filterLabel={t('users.filter')}
        reloadKey={`${reloadKey}:${source ?? ''}`}
        toolbar={<SourceFilter label={t('users.sourceFilter')} sources={SOURCES} source={source} />}
      />
      <CreateUserDialog open={creating} onClose={() => setCreating(false)} onCreated={reload} />
      <ResetPasswordDialog user={resetting} onClose={() => setResetting(null)} />
      <ConfirmDialog
        open={toggling !== null}
        title={toggling?.admin ? t('users.revokeAdminTitle', { name: toggling.username }) : t('users.grantAdminTitle', { name: toggling?.username ?? '' })}
        message={<p>{toggling?.admin ? t('users.revokeAdminText', { name: toggling.username }) : t('users.grantAdminText', { name: toggling?.username ?? '' })}</p>}
        confirmLabel={toggling?.admin ? t('users.revokeAdmin') : t('users.grantAdmin')}
        onConfirm={async () => {
          if (!toggling) return;
          await api.patch(`/users/${seg(toggling.username)}`, { admin: !toggling.admin });
          // One's own flag decides which pages the portal offers: read the session again.
          if (toggling.username === me?.name) await refresh();
          setDone(toggling.admin ? t('users.revokedAdmin', { name: toggling.username }) : t('users.grantedAdmin', { name: toggling.username }));
          reload();
        }}
        onClose={() => setToggling(null)}
      />
      <ConfirmDialog
        open={deleting !== null}
        title={t('users.deleteTitle', { name: deleting?.username ?? '' })}
        message={
          <p>
            {t('users.deleteText', { name: deleting?.username ?? '' })}
            {deleting?.username === me?.name && <strong> {t('users.deleteSelf')}</strong>}
          </p>
        }
        confirmLabel={t('common.delete')}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`/users/${seg(deleting.username)}`);
          setDone(t('users.deleted', { name: deleting.username }));
          reload();
        }}
        onClose={() => setDeleting(null)}
      />
      <UserDetailDialog name={shown} onClose={() => setQuery({ user: undefined })} />
    </>
  );
}

/** A user's detail (with the groups of their identity source), opened from the list; its address is `?user=`. */
function UserDetailDialog({ name, onClose }: { name: string | null; onClose: () => void }) {
  const { t, dateTime } = useI18n();
  const detail = useApi((signal) => (name ? api.get<UserDetail>(`/users/${seg(name)}`, undefined, signal) : Promise.resolve(undefined)), [name]);
  const u = detail.data && detail.data.username === name ? detail.data : undefined;
  return (
    <Dialog open={name !== null} title={t('users.detailTitle', { name: name ?? '' })} onClose={onClose}>
      {detail.error !== undefined && !detail.loading ? (
        <ErrorState error={detail.error} retry={detail.reload} />
      ) : !u ? (
        <Loading />
      ) : (
        <>
          <dl className="props">
            <dt>{t('users.col.source')}</dt>
            <dd>
              <SourceBadge source={u.source} />
            </dd>
            <dt>{t('users.col.email')}</dt>
            <dd>{u.email ?? '—'}</dd>
            <dt>{t('users.col.admin')}</dt>
            <dd>{u.admin ? t('common.yes') : t('common.no')}</dd>
            <dt>{t('common.created')}</dt>
            <dd>{dateTime(u.createdAt)}</dd>
            <dt>{t('users.col.lastLogin')}</dt>
            <dd>{u.source === 'local' ? t('users.lastLoginLocal') : u.lastLoginAt ? dateTime(u.lastLoginAt) : t('common.never')}</dd>
          </dl>
          <h3>{t('users.groups')}</h3>
          {u.groups.length === 0 ? (
            <p className="muted">{u.source === 'local' ? t('users.groupsLocal') : t('users.groupsNone')}</p>
          ) : (
            <ul>
              {u.groups.map((g) => (
                <li key={g}>{g}</li>
              ))}
            </ul>
          )}
        </>
      )}
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          {t('common.close')}
        </button>
      </div>
    </Dialog>
  );
}

/** Creates a user; a local user without a password gets a generated one, shown here once. */
function CreateUserDialog({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: () => void }) {
  const { t } = useI18n();
  const [username, setUsername] = useState('');
  const [source, setSource] = useState<UserSource>('local');
  const [password, setPassword] = useState('');
  const [admin, setAdmin] = useState(false);
  const [created, setCreated] = useState<CreatedUser | null>(null);
  const action = useAction();
  const close = () => {
    setUsername('');
    setSource('local');
    setPassword('');
    setAdmin(false);
    setCreated(null);
    action.clear();
    onClose();
  };
  const tooShort = password !== '' && password.length < 8;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (tooShort) return;
    const body = { username: username.trim(), source, admin, ...(source === 'local' && password ? { password } : {}) };
    await action.run(async () => {
      const answer = await api.post<CreatedUser>('/users', body);
      setCreated(answer);
      onCreated();
    });
  };
  return (
    <Dialog open={open} title={t('users.createTitle')} onClose={close}>
      {created ? (
        <>
          <Notice kind="success">{t('users.created', { name: created.username })}</Notice>
          {created.password && (
            <div className="secret admin-copy">
              <p>
                <strong>{t('users.generatedPassword')}</strong>
              </p>
              <Copyable text={created.password} what={t('users.generatedPasswordWhat')} />
              <p className="field-hint">{t('users.generatedPasswordOnce')}</p>
            </div>
          )}
          {created.source !== 'local' && <p>{t('users.externalCreated')}</p>}
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={close}>
              {t('common.close')}
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={submit}>
          <SelectField<UserSource>
            label={t('users.col.source')}
            value={source}
            onChange={setSource}
            options={SOURCES.map((s) => ({ value: s, label: t(`users.source.${s}`) }))}
            hint={source === 'local' ? t('users.sourceLocalHint') : t('users.sourceExternalHint')}
          />
          <TextField label={t('users.col.username')} value={username} onChange={setUsername} required autoComplete="off" maxLength={source === 'local' ? 64 : 255} hint={source === 'local' ? t('users.usernameHint') : t('users.usernameExternalHint')} />
          {source === 'local' && (
            <TextField
              label={`${t('users.password')} ${t('common.optional')}`}
              type="password"
              value={password}
              onChange={setPassword}
              autoComplete="new-password"
              maxLength={1024}
              hint={t('users.passwordHint')}
              error={tooShort ? t('users.passwordTooShort') : undefined}
            />
          )}
          <CheckboxField label={t('users.makeAdmin')} checked={admin} onChange={setAdmin} />
          {action.error !== undefined && <Notice kind="error">{errorMessage(t, action.error)}</Notice>}
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={action.busy || username.trim() === ''}>
              {t('users.createSubmit')}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

/** An administrator sets a local user's password (typed, or generated here and shown once); their sessions end. */
function ResetPasswordDialog({ user, onClose }: { user: User | null; onClose: () => void }) {
  const { t } = useI18n();
  const [password, setPassword] = useState('');
  const [generated, setGenerated] = useState(false);
  const [done, setDone] = useState(false);
  const action = useAction();
  const close = () => {
    setPassword('');
    setGenerated(false);
    setDone(false);
    action.clear();
    onClose();
  };
  const tooShort = password.length > 0 && password.length < 8;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!user || password.length < 8) return;
    if (await action.run(() => api.patch(`/users/${seg(user.username)}`, { password }))) setDone(true);
  };
  return (
    <Dialog open={user !== null} title={t('users.resetTitle', { name: user?.username ?? '' })} onClose={close}>
      {done ? (
        <>
          <Notice kind="success">{t('users.resetDone', { name: user?.username ?? '' })}</Notice>
          {generated && (
            <div className="secret admin-copy">
              <p>
                <strong>{t('users.newPassword')}</strong>
              </p>
              <Copyable text={password} what={t('users.generatedPasswordWhat')} />
              <p className="field-hint">{t('users.generatedPasswordOnce')}</p>
            </div>
          )}
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={close}>
              {t('common.close')}
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={submit}>
          <p>{t('users.resetText', { name: user?.username ?? '' })}</p>
          <TextField
            label={t('users.newPassword')}
            type={generated ? 'text' : 'password'}
            value={password}
            onChange={(v) => {
              setPassword(v);
              setGenerated(false);
            }}
            autoComplete="new-password"
            maxLength={1024}
            required
            hint={t('users.passwordMin')}
            error={tooShort ? t('users.passwordTooShort') : undefined}
          />
          <p>
            <button
              type="button"
              onClick={() => {
                setPassword(generatePassword());
                setGenerated(true);
              }}
            >
              {t('users.generate')}
            </button>
          </p>
          {action.error !== undefined && <Notice kind="error">{errorMessage(t, action.error)}</Notice>}
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={action.busy || password.length < 8}>
              {t('users.resetSubmit')}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
