import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, seg, type Page } from '../../api/client';
import { REGISTRY_TYPES, type Registry, type RegistryDetail, type RegistrySettings, type RegistryTestResult, type RegistryType } from '../../api/admin';
import { Link } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { DataTable, type Column } from '../../components/DataTable';
import { ConfirmDialog, Dialog } from '../../components/Dialog';
import { CheckboxField, SelectField, TextField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';

/** Registry endpoints: the upstreams of proxy-cache projects and the peers of replication. */
export function RegistriesPage(_props: PageProps) {
  const { t, dateTime } = useI18n();
  const [reloadKey, setReloadKey] = useState(0);
  const [editing, setEditing] = useState<Registry | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Registry | null>(null);
  const [tested, setTested] = useState<{ name: string; result?: RegistryTestResult; error?: unknown } | null>(null);
  const [testing, setTesting] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const reload = () => setReloadKey((k) => k + 1);

  const test = async (name: string) => {
    setTesting(name);
    setTested(null);
    try {
      setTested({ name, result: await api.post<RegistryTestResult>(`/registries/${seg(name)}/test`, {}) });
    } catch (error) {
      setTested({ name, error });
    } finally {
      setTesting(null);
    }
  };

  const columns: Column<Registry>[] = [
    { key: 'name', header: t('common.name'), render: (r) => <strong>{r.name}</strong> },
    { key: 'type', header: t('registries.type'), render: (r) => t(`registries.type.${r.type}`) },
    { key: 'url', header: t('registries.url'), render: (r) => <code>{r.url}</code> },
    {
      key: 'credentials',
      header: t('registries.credentials'),
      render: (r) => (r.username ? t('registries.credentialsAs', { username: r.username }) : <span className="muted">{t('registries.anonymous')}</span>),
    },
    {
      key: 'tls',
      header: t('registries.tls'),
      render: (r) =>
        r.insecure ? <span className="badge badge-warn">{t('registries.insecureBadge')}</span> : r.caFile ? t('registries.caFileBadge') : <span className="muted">{t('registries.tlsDefault')}</span>,
    },
    { key: 'description', header: t('common.description'), render: (r) => r.description ?? '' },
    { key: 'updated', header: t('registries.updated'), render: (r) => dateTime(r.updatedAt) },
    {
      key: 'actions',
      header: t('common.actions'),
      render: (r) => (
        <div className="toolbar admin-row-actions">
          <button type="button" onClick={() => void test(r.name)} disabled={testing === r.name} aria-label={t('registries.testNamed', { name: r.name })}>
            {testing === r.name ? t('registries.testing') : t('registries.test')}
          </button>
          <button type="button" onClick={() => setEditing(r)} aria-label={t('registries.editNamed', { name: r.name })}>
            {t('common.edit')}
          </button>
          <button type="button" onClick={() => setDeleting(r)} aria-label={t('registries.deleteNamed', { name: r.name })}>
            {t('common.delete')}
          </button>
        </div>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t('registries.title')}
        subtitle={t('registries.subtitle')}
        actions={
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('registries.create')}
          </button>
        }
      />
      {done && <Notice kind="success">{done}</Notice>}
      {tested && (
        <section aria-label={t('registries.resultOf', { name: tested.name })}>
          {tested.result ? <TestResult result={tested.result} name={tested.name} /> : <Notice kind="error">{errorMessage(t, tested.error)}</Notice>}
        </section>
      )}
      <DataTable<Registry>
        caption={t('registries.caption')}
        columns={columns}
        load={(params, signal) => api.get<Page<Registry>>('/registries', { ...params }, signal)}
        rowKey={(r) => r.name}
        filterLabel={t('registries.filter')}
        reloadKey={reloadKey}
        empty={
          <EmptyState title={t('registries.empty')}>
            <p>{t('registries.emptyHow')}</p>
          </EmptyState>
        }
      />
      <RegistryDialog
        editing={editing}
        onClose={() => setEditing(null)}
        onSaved={(name, created) => {
          setDone(created ? t('registries.created', { name }) : t('registries.saved', { name }));
          reload();
        }}
      />
      <DeleteRegistryDialog
        registry={deleting}
        onClose={() => setDeleting(null)}
        onDeleted={(name) => {
          setDone(t('registries.deleted', { name }));
          if (tested?.name === name) setTested(null);
          reload();
        }}
      />
    </>
  );
}

/** What a connection test found, in words: reachable or not, how it authenticates, what failed. */
function TestResult({ result, name }: { result: RegistryTestResult; name?: string }) {
  const { t, number } = useI18n();
  const auth = result.auth === null ? t('registries.auth.unknown') : t(`registries.auth.${result.auth}`);
  return (
    <Notice kind={result.ok ? 'success' : 'error'}>
      <p className="admin-verdict">{name ? (result.ok ? t('registries.okNamed', { name }) : t('registries.failedNamed', { name })) : result.ok ? t('registries.ok') : t('registries.failed')}</p>
      <dl className="props">
        <dt>{t('registries.reachable')}</dt>
        <dd>{result.auth !== null ? t('common.yes') : t('common.no')}</dd>
        <dt>{t('registries.authFlow')}</dt>
        <dd>{auth}</dd>
        {result.realm && (
          <>
            <dt>{t('registries.realm')}</dt>
            <dd>
              <code>{result.realm}</code>
            </dd>
          </>
        )}
        <dt>{t('registries.authenticated')}</dt>
        <dd>{result.authenticated ? t('common.yes') : t('common.no')}</dd>
        <dt>{t('registries.elapsed')}</dt>
        <dd>{t('registries.ms', { ms: number(result.elapsedMs) })}</dd>
        {result.error && (
          <>
            <dt>{t('registries.error')}</dt>
            <dd>{result.error}</dd>
          </>
        )}
      </dl>
    </Notice>
  );
}

/** The form of a new endpoint, or of a saved one's changes (credentials are never shown back). */
function RegistryDialog({ editing, onClose, onSaved }: { editing: Registry | 'new' | null; onClose: () => void; onSaved: (name: string, created: boolean) => void }) {
  const { t } = useI18n();
  const saved = editing && editing !== 'new' ? editing : null;
  const [name, setName] = useState('');
  const [type, setType] = useState<RegistryType>('distribution');
  const [url, setUrl] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [dropCredentials, setDropCredentials] = useState(false);
  const [caFile, setCaFile] = useState('');
  const [insecure, setInsecure] = useState(false);
  const [description, setDescription] = useState('');
  const [result, setResult] = useState<RegistryTestResult | null>(null);
  const save = useAction();
  const testing = useAction();
  const resultRef = useRef<HTMLDivElement>(null);
  // The result is below a long form: bring it into view when it arrives.
  useEffect(() => {
    if (result || testing.error !== undefined) resultRef.current?.scrollIntoView({ block: 'nearest' });
  }, [result, testing.error]);

  useEffect(() => {
    if (!editing) return;
    setName(saved?.name ?? '');
    setType(saved?.type ?? 'distribution');
    setUrl(saved?.url ?? '');
    setUsername(saved?.username ?? '');
    setPassword('');
    setDropCredentials(false);
    setCaFile(saved?.caFile ?? '');
    setInsecure(saved?.insecure ?? false);
    setDescription(saved?.description ?? '');
    setResult(null);
    save.clear();
    testing.clear();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [editing]);

  /** The fields to send: a new endpoint's settings, or only what changed on a saved one. */
  const body = (): RegistrySettings => {
    const trimmedUrl = url.trim();
    if (!saved) {
      return {
        name: name.trim(),
        type,
        ...(trimmedUrl ? { url: trimmedUrl } : {}),
        ...(username.trim() ? { username: username.trim(), password } : {}),
        ...(caFile.trim() ? { caFile: caFile.trim() } : {}),
        insecure,
        ...(description.trim() ? { description: description.trim() } : {}),
      };
    }
    const changes: RegistrySettings = {};
    if (type !== saved.type) changes.type = type;
    if (trimmedUrl && trimmedUrl !== saved.url) changes.url = trimmedUrl;
    if (dropCredentials) changes.username = null;
    else {
      if (username.trim() !== (saved.username ?? '')) changes.username = username.trim() || null;
      if (password) changes.password = password;
    }
    if (caFile.trim() !== (saved.caFile ?? '')) changes.caFile = caFile.trim() || null;
    if (insecure !== saved.insecure) changes.insecure = insecure;
    if (description.trim() !== (saved.description ?? '')) changes.description = description.trim() || null;
    return changes;
  };

  const runTest = () =>
    void testing.run(async () => {
      setResult(null);
      setResult(saved ? await api.post<RegistryTestResult>(`/registries/${seg(saved.name)}/test`, body()) : await api.post<RegistryTestResult>('/registries/test', body()));
    });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const ok = await save.run(async () => {
      if (saved) await api.patch<RegistryDetail>(`/registries/${seg(saved.name)}`, body());
      else await api.post<RegistryDetail>('/registries', body());
    });
    if (ok) {
      onSaved(saved?.name ?? name.trim(), !saved);
      onClose();
    }
  };

  const needsPassword = !dropCredentials && username.trim() !== '' && password === '' && (!saved || username.trim() !== (saved.username ?? ''));
  return (
    <Dialog open={editing !== null} title={saved ? t('registries.editTitle', { name: saved.name }) : t('registries.createTitle')} onClose={onClose}>
      <form onSubmit={submit}>
        {!saved && <TextField label={t('common.name')} value={name} onChange={setName} required maxLength={64} autoComplete="off" hint={t('registries.nameHint')} />}
        <SelectField<RegistryType> label={t('registries.type')} value={type} onChange={setType} options={REGISTRY_TYPES.map((v) => ({ value: v, label: t(`registries.type.${v}`) }))} />
        <TextField
          label={['dockerhub', 'ghcr', 'quay'].includes(type) ? `${t('registries.url')} ${t('common.optional')}` : t('registries.url')}
          type="url"
          value={url}
          onChange={setUrl}
          maxLength={2048}
          required={!['dockerhub', 'ghcr', 'quay'].includes(type)}
          placeholder="https://registry.example.com"
          hint={t('registries.urlHint')}
        />
        <fieldset>
          <legend>{t('registries.credentials')}</legend>
          {saved?.hasCredential && <p className="field-hint">{t('registries.credentialSaved')}</p>}
          {saved?.hasCredential && <CheckboxField label={t('registries.dropCredentials')} checked={dropCredentials} onChange={setDropCredentials} />}
          {!dropCredentials && (
            <>
              <TextField label={`${t('registries.username')} ${t('common.optional')}`} value={username} onChange={setUsername} maxLength={255} autoComplete="off" hint={t('registries.usernameHint')} />
              <TextField
                label={t('registries.password')}
                type="password"
                value={password}
                onChange={setPassword}
                maxLength={4096}
                autoComplete="new-password"
                hint={saved?.hasCredential ? t('registries.passwordKeep') : t('registries.passwordHint')}
                error={needsPassword ? t('registries.passwordNeeded') : undefined}
              />
            </>
          )}
        </fieldset>
        <fieldset>
          <legend>{t('registries.tls')}</legend>
          <TextField label={`${t('registries.caFile')} ${t('common.optional')}`} value={caFile} onChange={setCaFile} maxLength={1024} placeholder="/etc/berth/upstream-ca.pem" hint={t('registries.caFileHint')} />
          <CheckboxField label={t('registries.insecure')} checked={insecure} onChange={setInsecure} hint={t('registries.insecureHint')} />
        </fieldset>
        <TextField label={`${t('common.description')} ${t('common.optional')}`} value={description} onChange={setDescription} maxLength={1024} />
        <div ref={resultRef}>
          {testing.busy && <Notice kind="info">{t('registries.testing')}</Notice>}
          {result && <TestResult result={result} />}
          {testing.error !== undefined && <Notice kind="error">{errorMessage(t, testing.error)}</Notice>}
        </div>
        {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
        <div className="dialog-actions admin-wrap">
          <button type="button" onClick={runTest} disabled={testing.busy || (!saved && !url.trim() && !['dockerhub', 'ghcr', 'quay'].includes(type))}>
            {t('registries.testConnection')}
          </button>
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={save.busy || needsPassword}>
            {saved ? t('common.save') : t('registries.createSubmit')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Deleting an endpoint: says first what still uses it (the server refuses then, 409). */
function DeleteRegistryDialog({ registry, onClose, onDeleted }: { registry: Registry | null; onClose: () => void; onDeleted: (name: string) => void }) {
  const { t } = useI18n();
  const name = registry?.name ?? null;
  const detail = useApi((signal) => (name ? api.get<RegistryDetail>(`/registries/${seg(name)}`, undefined, signal) : Promise.resolve(undefined)), [name]);
  const d = detail.data && detail.data.name === name ? detail.data : undefined;
  const inUse = d !== undefined && (d.usedBy.length > 0 || d.usedByRules.length > 0);
  return (
    <ConfirmDialog
      open={registry !== null}
      title={t('registries.deleteTitle', { name: name ?? '' })}
      message={
        <>
          <p>{t('registries.deleteText', { name: name ?? '' })}</p>
          {!d && detail.loading && <Loading />}
          {inUse && (
            <Notice kind="warning">
              <p className="admin-verdict">{t('registries.inUse')}</p>
              {d.usedBy.length > 0 && (
                <>
                  <p>{t('registries.usedByProjects')}</p>
                  <ul>
                    {d.usedBy.map((p) => (
                      <li key={p}>
                        <Link to={`/projects/${seg(p)}`}>{p}</Link>
                      </li>
                    ))}
                  </ul>
                </>
              )}
              {d.usedByRules.length > 0 && (
                <>
                  <p>{t('registries.usedByRules')}</p>
                  <ul>
                    {d.usedByRules.map((r) => (
                      <li key={r}>{r}</li>
                    ))}
                  </ul>
                  <p>
                    <Link to="/admin/replication">{t('registries.toReplication')}</Link>
                  </p>
                </>
              )}
            </Notice>
          )}
        </>
      }
      confirmLabel={t('common.delete')}
      onConfirm={async () => {
        if (!name) return;
        await api.del(`/registries/${seg(name)}`);
        onDeleted(name);
      }}
      onClose={onClose}
    />
  );
}
