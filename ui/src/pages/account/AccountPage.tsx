import { useState, type FormEvent } from 'react';
import { ApiError, api, seg, type Page } from '../../api/client';
import type { CreatedToken, Me, PersonalToken, TokenRequest } from '../../api/account';
import { TOKEN_NAME } from '../../api/account';
import { navigate } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { registryHost, useSession } from '../../app/session';
import { Copyable } from '../../components/CopyButton';
import { DataTable, type Column } from '../../components/DataTable';
import { ConfirmDialog, Dialog } from '../../components/Dialog';
import { SelectField, TextField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, ErrorState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { SourceBadge } from '../admin/parts';


/** Whether an error is the server asking for proof of the password (a fresh sign-in, or `currentPassword`). */
function needsFreshSignIn(error: unknown): boolean {
  const fields = error instanceof ApiError ? (error.detail as { fields?: { path?: string }[] } | undefined)?.fields : undefined;
  return Array.isArray(fields) && fields.some((f) => f.path === 'currentPassword');
}

/** My account: who I am, my password (local accounts), my personal access tokens. */
export function AccountPage(_props: PageProps) {
  const { t, dateTime } = useI18n();
  const me = useApi((signal) => api.get<Me>('/users/me', undefined, signal), []);
  const u = me.data;
  return (
    <>
      <PageHeader title={t('account.title')} />
      {me.error !== undefined && !me.loading ? (
        <ErrorState error={me.error} retry={me.reload} />
      ) : !u ? (
        <Loading />
      ) : (
        <>
          <section className="card" aria-labelledby="account-who">
            <h2 id="account-who" className="admin-card-title">
              {u.username}
            </h2>
            <dl className="props">
              <dt>{t('account.source')}</dt>
              <dd>
                <SourceBadge source={u.source} />
              </dd>
              <dt>{t('account.email')}</dt>
              <dd>{u.email ?? <span className="muted">{t('account.noEmail')}</span>}</dd>
              <dt>{t('account.role')}</dt>
              <dd>{u.admin ? <span className="badge badge-ok">{t('account.admin')}</span> : t('account.notAdmin')}</dd>
              <dt>{t('account.groups')}</dt>
              <dd>{u.groups.length === 0 ? <span className="muted">{u.source === 'local' ? t('account.groupsLocal') : t('account.groupsNone')}</span> : u.groups.join(', ')}</dd>
              <dt>{t('account.created')}</dt>
              <dd>{dateTime(u.createdAt)}</dd>
              {u.source !== 'local' && (
                <>
                  <dt>{t('account.lastLogin')}</dt>
                  <dd>{u.lastLoginAt ? dateTime(u.lastLoginAt) : t('common.never')}</dd>
                </>
              )}
            </dl>
          </section>
          <PasswordSection me={u} />
          <TokensSection me={u} />
        </>
      )}
    </>
  );
}

/** Changing one's own password: local accounts only (the others' passwords live in the directory or at the provider). */
function PasswordSection({ me }: { me: Me }) {
  const { t } = useI18n();
  const { signOut } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [changed, setChanged] = useState(false);
  const action = useAction();
  const tooShort = next.length > 0 && next.length < 8;
  const mismatch = again.length > 0 && again !== next;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (next.length < 8 || next !== again) return;
    if (await action.run(() => api.patch('/users/me', { password: next, currentPassword: current }))) setChanged(true);
  };
  // The change ended every session of the account, this one too: the next step is signing in again.
  if (changed) {
    return (
      <section className="card" aria-labelledby="account-password">
        <h2 id="account-password" className="admin-card-title">
          {t('account.password')}
        </h2>
        <Notice kind="success">{t('account.passwordChanged')}</Notice>
        <button type="button" className="primary" onClick={() => void signOut().then(() => navigate('/login?return=%2Faccount', { replace: true }))}>
          {t('account.signInNew')}
        </button>
      </section>
    );
  }
  return (
    <section className="card" aria-labelledby="account-password">
      <h2 id="account-password" className="admin-card-title">
        {t('account.password')}
      </h2>
      {me.source !== 'local' ? (
        <p>{me.source === 'ldap' ? t('account.passwordLdap') : t('account.passwordOidc')}</p>
      ) : (
        <form onSubmit={submit}>
          <p className="muted">{t('account.passwordSignsOut')}</p>
          <TextField label={t('account.currentPassword')} type="password" value={current} onChange={setCurrent} autoComplete="current-password" required maxLength={1024} />
          <TextField label={t('account.newPassword')} type="password" value={next} onChange={setNext} autoComplete="new-password" required maxLength={1024} hint={t('account.passwordMin')} error={tooShort ? t('account.passwordTooShort') : undefined} />
          <TextField label={t('account.newPasswordAgain')} type="password" value={again} onChange={setAgain} autoComplete="new-password" required maxLength={1024} error={mismatch ? t('account.passwordMismatch') : undefined} />
          {action.error !== undefined && <Notice kind="error">{errorMessage(t, action.error)}</Notice>}
          <button type="submit" className="primary" disabled={action.busy || !current || next.length < 8 || next !== again}>
            {t('account.changePassword')}
          </button>
        </form>
      )}
    </section>
  );
}

/** The caller's personal access tokens: list, create (shown once, with the docker login command), revoke. */
function TokensSection({ me }: { me: Me }) {
  const { t, dateTime } = useI18n();
  const [reloadKey, setReloadKey] = useState(0);
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<PersonalToken | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const status = (tok: PersonalToken) =>
    tok.revoked ? (
      <span className="badge badge-bad">{t('account.tokens.revoked')}</span>
    ) : tok.expiresAt && Date.parse(tok.expiresAt) < Date.now() ? (
      <span className="badge badge-warn">{t('account.tokens.expired')}</span>
    ) : (
      <span className="badge badge-ok">{t('account.tokens.active')}</span>
    );
  const columns: Column<PersonalToken>[] = [
    { key: 'name', header: t('account.tokens.name'), render: (tok) => <strong>{tok.name}</strong> },
    { key: 'prefix', header: t('account.tokens.prefix'), render: (tok) => <code>{tok.prefix}…</code> },
    { key: 'status', header: t('common.status'), render: status },
    { key: 'created', header: t('common.created'), render: (tok) => dateTime(tok.createdAt) },
    { key: 'expires', header: t('account.tokens.expires'), render: (tok) => (tok.expiresAt ? dateTime(tok.expiresAt) : t('common.never')) },
    { key: 'used', header: t('account.tokens.lastUsed'), render: (tok) => (tok.lastUsedAt ? dateTime(tok.lastUsedAt) : t('common.never')) },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (tok) =>
        tok.revoked ? null : (
          <button type="button" onClick={() => setRevoking(tok)} aria-label={t('account.tokens.revokeNamed', { name: tok.name })}>
            {t('account.tokens.revoke')}
          </button>
        ),
    },
  ];
  return (
    <section aria-labelledby="account-tokens">
      <div className="page-header admin-section-header">
        <h2 id="account-tokens">{t('account.tokens.title')}</h2>
        <div className="actions">
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('account.tokens.create')}
          </button>
        </div>
      </div>
      <p className="muted">{me.source === 'oidc' ? t('account.tokens.introOidc') : t('account.tokens.intro')}</p>
      {done && <Notice kind="success">{done}</Notice>}
      <DataTable<PersonalToken>
        caption={t('account.tokens.caption')}
        columns={columns}
        load={(params, signal) => api.get<Page<PersonalToken>>('/users/me/tokens', { page: params.page, pageSize: params.pageSize }, signal)}
        rowKey={(tok) => tok.name}
        reloadKey={reloadKey}
        queryPrefix="t"
        empty={
          <EmptyState title={t('account.tokens.empty')}>
            <p>{t('account.tokens.emptyHow')}</p>
          </EmptyState>
        }
      />
      <CreateTokenDialog open={creating} me={me} onClose={() => setCreating(false)} onCreated={() => setReloadKey((k) => k + 1)} />
      <ConfirmDialog
        open={revoking !== null}
        title={t('account.tokens.revokeTitle', { name: revoking?.name ?? '' })}
        message={<p>{t('account.tokens.revokeText', { name: revoking?.name ?? '' })}</p>}
        confirmLabel={t('account.tokens.revoke')}
        onConfirm={async () => {
          if (!revoking) return;
          await api.del(`/users/me/tokens/${seg(revoking.name)}`);
          setDone(t('account.tokens.revokedDone', { name: revoking.name }));
          setReloadKey((k) => k + 1);
        }}
        onClose={() => setRevoking(null)}
      />
    </section>
  );
}

type Expiry = '30' | '90' | '365' | 'never';

function CreateTokenDialog({ open, me, onClose, onCreated }: { open: boolean; me: Me; onClose: () => void; onCreated: () => void }) {
  const { t, dateTime } = useI18n();
  const { info, authConfig } = useSession();
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<Expiry>('90');
  const [password, setPassword] = useState('');
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const action = useAction();
  const hasPassword = me.source !== 'oidc';
  const badName = name !== '' && !TOKEN_NAME.test(name);
  const close = () => {
    setName('');
    setExpiry('90');
    setPassword('');
    setCreated(null);
    action.clear();
    onClose();
  };
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (badName || !name) return;
    const body: TokenRequest = { name, expiresInDays: expiry === 'never' ? -1 : Number(expiry), ...(hasPassword && password ? { currentPassword: password } : {}) };
    await action.run(async () => {
      setCreated(await api.post<CreatedToken>('/users/me/tokens', body));
      onCreated();
    });
  };
  const host = registryHost(info);
  const signInAgain = authConfig.oidc ? `${authConfig.oidc.loginPath}?return=${encodeURIComponent('/account')}` : null;
  return (
    <Dialog open={open} title={t('account.tokens.createTitle')} onClose={close}>
      {created ? (
        <>
          <Notice kind="success">{t('account.tokens.created', { name: created.name })}</Notice>
          <div className="secret admin-copy">
            <p>
              <strong>{t('account.tokens.yourToken')}</strong>
            </p>
            <Copyable text={created.token} what={t('account.tokens.tokenWhat')} />
            <p className="field-hint">{t('account.tokens.once')}</p>
          </div>
          <h3>{t('account.tokens.dockerLogin')}</h3>
          <p>{t('account.tokens.dockerLoginText')}</p>
          <p className="admin-copy">
            <Copyable text={`docker login ${host} -u ${me.username}`} what={t('account.tokens.dockerLoginWhat')} />
          </p>
          <p className="field-hint">{created.expiresAt ? t('account.tokens.expiresOn', { at: dateTime(created.expiresAt) }) : t('account.tokens.neverExpires')}</p>
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={close}>
              {t('common.close')}
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={submit}>
          <TextField label={t('account.tokens.name')} value={name} onChange={setName} required maxLength={128} autoComplete="off" hint={t('account.tokens.nameHint')} error={badName ? t('account.tokens.nameInvalid') : undefined} />
          <SelectField<Expiry>
            label={t('account.tokens.expiry')}
            value={expiry}
            onChange={setExpiry}
            options={[
              { value: '30', label: t('account.tokens.days', { days: 30 }) },
              { value: '90', label: t('account.tokens.days', { days: 90 }) },
              { value: '365', label: t('account.tokens.days', { days: 365 }) },
              { value: 'never', label: t('account.tokens.never') },
            ]}
          />
          {hasPassword ? (
            <TextField label={`${t('account.currentPassword')} ${t('common.optional')}`} type="password" value={password} onChange={setPassword} autoComplete="current-password" maxLength={1024} hint={t('account.tokens.passwordHint')} />
          ) : (
            <p className="field-hint">{t('account.tokens.oidcFresh')}</p>
          )}
          {action.error !== undefined && (
            <Notice kind="error">
              {needsFreshSignIn(action.error) && !hasPassword ? (
                // The server's words name a password field an OIDC user does not have: say what it means for them.
                <p className="admin-tight">
                  {t('account.tokens.signInAgainText')} {signInAgain && <a href={signInAgain}>{t('account.tokens.signInAgain')}</a>}
                </p>
              ) : (
                <p className="admin-tight">{errorMessage(t, action.error)}</p>
              )}
              {needsFreshSignIn(action.error) && hasPassword && <p>{t('account.tokens.givePassword')}</p>}
            </Notice>
          )}
          <div className="dialog-actions">
            <button type="button" onClick={close}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={action.busy || !name || badName}>
              {t('account.tokens.createSubmit')}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
