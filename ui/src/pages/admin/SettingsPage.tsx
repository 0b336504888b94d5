import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api } from '../../api/client';
import { ANNOUNCEMENT_MAX, type Setting, type SettingsChange, type SystemSettings } from '../../api/admin';
import type { AuthConfig, SystemInfo } from '../../api/types';
import type { PageProps } from '../../app/routes';
import { useSession } from '../../app/session';
import { CheckboxField, SelectField, TextAreaField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { ErrorState, Loading, Notice, errorMessage } from '../../components/states';
import { useI18n } from '../../i18n/index';

type Creation = 'admins' | 'everyone';

/** Run-time settings (who creates projects, audited pulls, the announcement) and what this Berth is. */
export function SettingsPage(_props: PageProps) {
  const { t } = useI18n();
  const { refresh } = useSession();
  const settings = useApi((signal) => api.get<SystemSettings>('/system/settings', undefined, signal), []);
  const [projectCreation, setProjectCreation] = useState<Creation>('admins');
  const [auditPulls, setAuditPulls] = useState(false);
  const [announcement, setAnnouncement] = useState('');
  const [saved, setSaved] = useState(false);
  const save = useAction();
  const s = settings.data;

  useEffect(() => {
    if (!s) return;
    setProjectCreation(s.projectCreation.value);
    setAuditPulls(s.auditPulls.value);
    setAnnouncement(s.announcement.value ?? '');
  }, [s]);

  /** Sends `change`, shows the answer, and reads the session's system info again (the announcement banner). */
  const apply = async (change: SettingsChange) => {
    setSaved(false);
    const ok = await save.run(async () => {
      await api.patch<SystemSettings>('/system/settings', change);
      settings.reload();
      await refresh();
    });
    setSaved(ok);
  };

  const changes = (): SettingsChange => {
    if (!s) return {};
    const change: SettingsChange = {};
    if (projectCreation !== s.projectCreation.value) change.projectCreation = projectCreation;
    if (auditPulls !== s.auditPulls.value) change.auditPulls = auditPulls;
    if (announcement !== (s.announcement.value ?? '')) change.announcement = announcement.trim() === '' ? null : announcement;
    return change;
  };
  const dirty = Object.keys(changes()).length > 0;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (dirty) void apply(changes());
  };

  return (
    <>
      <PageHeader title={t('settings.title')} subtitle={t('settings.subtitle')} />
      {settings.error !== undefined && !settings.loading ? (
        <ErrorState error={settings.error} retry={settings.reload} />
      ) : !s ? (
        <Loading />
      ) : (
        <form className="card" onSubmit={submit} aria-labelledby="settings-runtime">
          <h2 id="settings-runtime" className="admin-card-title">
            {t('settings.runtime')}
          </h2>
          <SelectField<Creation>
            label={t('settings.projectCreation')}
            value={projectCreation}
            onChange={setProjectCreation}
            options={[
              { value: 'admins', label: t('settings.projectCreation.admins') },
              { value: 'everyone', label: t('settings.projectCreation.everyone') },
            ]}
          />
          <Origin setting={s.projectCreation} configValue={t(`settings.projectCreation.${s.projectCreation.configValue}`)} onReset={() => void apply({ projectCreation: null })} busy={save.busy} />
          <CheckboxField label={t('settings.auditPulls')} checked={auditPulls} onChange={setAuditPulls} hint={t('settings.auditPullsHint')} />
          <Origin setting={s.auditPulls} configValue={s.auditPulls.configValue ? t('common.enabled') : t('common.disabled')} onReset={() => void apply({ auditPulls: null })} busy={save.busy} />
          <TextAreaField
            label={t('settings.announcement')}
            value={announcement}
            onChange={setAnnouncement}
            maxLength={ANNOUNCEMENT_MAX}
            hint={t('settings.announcementHint', { max: ANNOUNCEMENT_MAX, left: ANNOUNCEMENT_MAX - announcement.length })}
          />
          <Origin setting={s.announcement} configValue={t('common.none')} onReset={() => void apply({ announcement: null })} busy={save.busy} />
          {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
          {saved && <Notice kind="success">{t('settings.saved')}</Notice>}
          <div className="toolbar">
            <button type="submit" className="primary" disabled={save.busy || !dirty}>
              {t('common.save')}
            </button>
          </div>
        </form>
      )}
      <SystemInformation />
    </>
  );
}

/** Where a setting's value comes from, and (when set at run time) a way back to the configuration's value. */
function Origin<T>({ setting, configValue, onReset, busy }: { setting: Setting<T>; configValue: string; onReset: () => void; busy: boolean }) {
  const { t, dateTime } = useI18n();
  if (setting.source === 'config') return <p className="field-hint admin-origin">{t('settings.fromConfig')}</p>;
  return (
    <p className="field-hint admin-origin">
      {t('settings.fromRuntime', { by: setting.updatedBy ?? t('common.unknown'), at: dateTime(setting.updatedAt) })}{' '}
      <button type="button" className="link" onClick={onReset} disabled={busy}>
        {t('settings.reset', { value: configValue })}
      </button>
    </p>
  );
}

/** Read-only: version, storage, database, external URLs, how people sign in. */
function SystemInformation() {
  const { t } = useI18n();
  const { authConfig } = useSession();
  const info = useApi((signal) => api.get<SystemInfo>('/system/info', undefined, signal), []);
  const auth = useApi((signal) => api.get<AuthConfig>('/auth/config', undefined, signal), []);
  const mode = (auth.data ?? authConfig).mode;
  const row = (label: string, value: ReactNode) => (
    <>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </>
  );
  return (
    <section className="card" aria-labelledby="settings-info">
      <h2 id="settings-info" className="admin-card-title">
        {t('settings.info')}
      </h2>
      {info.error !== undefined && !info.loading ? (
        <ErrorState error={info.error} retry={info.reload} />
      ) : !info.data ? (
        <Loading />
      ) : (
        <dl className="props">
          {row(t('settings.version'), info.data.version)}
          {row(t('settings.storage'), t(`settings.storage.${info.data.storage}`))}
          {row(t('settings.database'), t(`settings.database.${info.data.database}`))}
          {row(
            t('settings.externalURLs'),
            info.data.externalURLs.length === 0 ? (
              <span className="muted">{t('settings.noExternalURL')}</span>
            ) : (
              <ul className="admin-plain-list">
                {info.data.externalURLs.map((u) => (
                  <li key={u}>
                    <code>{u}</code>
                  </li>
                ))}
              </ul>
            ),
          )}
          {row(t('settings.authMode'), t(`settings.authMode.${mode}`) + (mode === 'oidc' && (auth.data ?? authConfig).oidc ? ` (${(auth.data ?? authConfig).oidc!.displayName})` : ''))}
        </dl>
      )}
      <p className="field-hint">{t('settings.infoHint')}</p>
    </section>
  );
}
