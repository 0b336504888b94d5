import { useEffect, useState, type FormEvent } from 'react';
import { api, seg } from '../../../api/client';
import { WEBHOOK_EVENTS, WEBHOOK_FORMATS, type SavedWebhook, type Webhook, type WebhookEvent, type WebhookFormat } from '../../../api/project-tabs';
import { Dialog } from '../../../components/Dialog';
import { CheckboxField, SelectField, TextField } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

type SecretChoice = 'keep' | 'none' | 'generate';
type AuthChoice = 'keep' | 'none' | 'set';

/**
 * Creating or changing a webhook policy. The auth header and signing secret are write-only: an
 * edit keeps them unless told to replace or remove them.
 */
export function WebhookForm({ open, base, existing, onClose, onSaved }: { open: boolean; base: string; existing: Webhook | null; onClose: () => void; onSaved: (saved: SavedWebhook, created: boolean) => void }) {
  const { t } = useI18n();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<Set<WebhookEvent>>(new Set());
  const [format, setFormat] = useState<WebhookFormat>('harbor');
  const [enabled, setEnabled] = useState(true);
  const [auth, setAuth] = useState<AuthChoice>('none');
  const [authHeader, setAuthHeader] = useState('');
  const [secret, setSecret] = useState<SecretChoice>('none');
  const [insecure, setInsecure] = useState(false);
  const [tried, setTried] = useState(false);
  const save = useAction();
  const { clear } = save;

  useEffect(() => {
    if (!open) return;
    setName(existing?.name ?? '');
    setUrl(existing?.url ?? '');
    setDescription(existing?.description ?? '');
    setEvents(new Set(existing?.events ?? ['artifact.pushed']));
    setFormat(existing?.format ?? 'harbor');
    setEnabled(existing?.enabled ?? true);
    setAuth(existing?.hasAuthHeader ? 'keep' : 'none');
    setAuthHeader('');
    setSecret(existing ? (existing.hasSecret ? 'keep' : 'none') : 'generate');
    setInsecure(existing?.insecure ?? false);
    setTried(false);
    clear();
  }, [open, existing, clear]);

  const nameError = !existing && !NAME.test(name) ? t('webhooks.form.nameRule') : undefined;
  const urlError = !/^https?:\/\/[^\s]+$/i.test(url.trim()) ? t('webhooks.form.urlRule') : undefined;
  const eventsError = events.size === 0 ? t('webhooks.form.eventsRule') : undefined;
  const authError = auth === 'set' && !authHeader.trim() ? t('common.required') : undefined;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setTried(true);
    if (nameError || urlError || eventsError || authError) return;
    const body: Record<string, unknown> = {
      url: url.trim(),
      events: WEBHOOK_EVENTS.filter((e) => events.has(e)),
      format,
      description: description.trim() || null,
      enabled,
      insecure,
    };
    if (existing) {
      // Send only what changed, so the audit log says what was changed.
      const same = (key: string, before: unknown) => JSON.stringify(body[key]) === JSON.stringify(before);
      if (same('url', existing.url)) delete body.url;
      if (same('events', WEBHOOK_EVENTS.filter((e) => existing.events.includes(e)))) delete body.events;
      if (same('format', existing.format)) delete body.format;
      if (same('description', existing.description)) delete body.description;
      if (same('enabled', existing.enabled)) delete body.enabled;
      if (same('insecure', existing.insecure)) delete body.insecure;
    }
    if (auth === 'set') body.authHeader = authHeader.trim();
    else if (auth === 'none' && existing?.hasAuthHeader) body.authHeader = null;
    if (secret === 'generate') body.generateSecret = true;
    else if (secret === 'none' && existing?.hasSecret) body.secret = null;
    let saved: SavedWebhook | undefined;
    const ok = await save.run(async () => {
      saved = existing ? await api.patch<SavedWebhook>(`${base}/${seg(existing.name)}`, body) : await api.post<SavedWebhook>(base, { name, ...body });
    });
    if (ok && saved) onSaved(saved, !existing);
  };

  const authOptions: { value: AuthChoice; label: string }[] = [
    ...(existing?.hasAuthHeader ? [{ value: 'keep' as const, label: t('webhooks.form.authKeep') }] : []),
    { value: 'none', label: t('webhooks.form.authNone') },
    { value: 'set', label: existing?.hasAuthHeader ? t('webhooks.form.authReplace') : t('webhooks.form.authSet') },
  ];
  const secretOptions: { value: SecretChoice; label: string }[] = [
    ...(existing?.hasSecret ? [{ value: 'keep' as const, label: t('webhooks.form.secretKeep') }] : []),
    { value: 'none', label: t('webhooks.form.secretNone') },
    { value: 'generate', label: existing?.hasSecret ? t('webhooks.form.secretRegenerate') : t('webhooks.form.secretGenerate') },
  ];

  return (
    <Dialog open={open} title={existing ? t('webhooks.form.editTitle', { name: existing.name }) : t('webhooks.form.newTitle')} onClose={onClose}>
      <form className="pt-dialog-form" onSubmit={submit} noValidate>
        {!existing && <TextField label={t('webhooks.form.name')} value={name} onChange={setName} required maxLength={64} autoComplete="off" hint={t('webhooks.form.nameHint')} error={tried ? nameError : undefined} />}
        <TextField label={t('webhooks.form.url')} type="url" value={url} onChange={setUrl} required maxLength={2048} placeholder="https://ci.example.com/hooks/berth" error={tried ? urlError : undefined} />
        <TextField label={t('webhooks.form.description')} value={description} onChange={setDescription} maxLength={1024} />
        <fieldset>
          <legend>{t('webhooks.form.events')}</legend>
          {WEBHOOK_EVENTS.map((e) => (
            <CheckboxField
              key={e}
              label={t(`webhooks.event.${e}`)}
              checked={events.has(e)}
              onChange={(on) => {
                const next = new Set(events);
                if (on) next.add(e);
                else next.delete(e);
                setEvents(next);
              }}
            />
          ))}
          {tried && eventsError && <p className="field-error">{eventsError}</p>}
        </fieldset>
        <SelectField<WebhookFormat> label={t('webhooks.form.format')} value={format} onChange={setFormat} options={WEBHOOK_FORMATS.map((f) => ({ value: f, label: t(`webhooks.format.${f}`) }))} />
        <SelectField<AuthChoice> label={t('webhooks.form.auth')} value={auth} onChange={setAuth} options={authOptions} hint={t('webhooks.form.authHint')} />
        {auth === 'set' && <TextField label={t('webhooks.form.authHeader')} type="password" value={authHeader} onChange={setAuthHeader} maxLength={4096} autoComplete="off" placeholder="Bearer …" error={tried ? authError : undefined} />}
        <SelectField<SecretChoice> label={t('webhooks.form.secret')} value={secret} onChange={setSecret} options={secretOptions} hint={t('webhooks.form.secretHint')} />
        <CheckboxField label={t('webhooks.form.enabled')} checked={enabled} onChange={setEnabled} />
        <CheckboxField label={t('webhooks.form.insecure')} checked={insecure} onChange={setInsecure} hint={t('webhooks.form.insecureHint')} />
        {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={save.busy}>
            {existing ? t('common.save') : t('common.create')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
