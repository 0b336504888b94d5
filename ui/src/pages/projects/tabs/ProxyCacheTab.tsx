import { useState, type FormEvent } from 'react';
import { api, seg } from '../../../api/client';
import type { ProjectTabProps } from '../../../api/projects';
import { Link } from '../../../app/router';
import { registryHost, useSession } from '../../../app/session';
import { Copyable } from '../../../components/CopyButton';
import { CheckboxField, wholeNumber } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { EmptyState, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { NumberField } from '../../../components/Field';

const MAX_FRESHNESS = 31_536_000;

/** A proxy-cache project: where it pulls from, how long a cached tag is served, and how to pull through it. */
export function ProxyCacheTab({ project, reload }: ProjectTabProps) {
  const { t, number } = useI18n();
  const { user, info } = useSession();
  const host = registryHost(info);
  const manage = project.permissions.includes('project.update');
  const proxy = project.proxyCache;
  const [freshness, setFreshness] = useState(String(proxy?.freshness ?? ''));
  const [useDefault, setUseDefault] = useState(false);
  const [saved, setSaved] = useState(false);
  const save = useAction();

  if (!proxy) {
    return (
      <section aria-labelledby="pt-proxy-h">
        <h2 id="pt-proxy-h">{t('proxyCache.title')}</h2>
        <EmptyState title={t('proxyCache.notProxy')}>
          <p>{t('proxyCache.notProxyHint')}</p>
        </EmptyState>
      </section>
    );
  }

  const value = wholeNumber(freshness, 0, MAX_FRESHNESS);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    if (!useDefault && value === undefined) return;
    const ok = await save.run(() => api.patch(`/projects/${seg(project.name)}`, { proxyCache: { freshness: useDefault ? null : value } }));
    if (ok) {
      setSaved(true);
      setUseDefault(false);
      reload();
    }
  };

  const example = `docker pull ${host}/${project.name}/library/alpine:3`;
  return (
    <section aria-labelledby="pt-proxy-h">
      <h2 id="pt-proxy-h">{t('proxyCache.title')}</h2>
      <div className="card">
        <dl className="props">
          <dt>{t('proxyCache.registry')}</dt>
          <dd>
            <code>{proxy.registry}</code>{' '}
            {user?.isAdmin && <Link to="/admin/registries">{t('proxyCache.registriesLink')}</Link>}
          </dd>
          <dt>{t('proxyCache.freshness')}</dt>
          <dd>{proxy.freshness === 0 ? t('proxyCache.freshnessZero') : t('proxyCache.freshnessValue', { seconds: number(proxy.freshness) })}</dd>
        </dl>
      </div>
      {manage && (
        <form className="card pt-form" onSubmit={submit} noValidate aria-labelledby="pt-proxy-edit-h">
          <h3 id="pt-proxy-edit-h">{t('proxyCache.edit')}</h3>
          <NumberField
            label={t('proxyCache.freshnessLabel')}
            value={freshness}
            onChange={setFreshness}
            min={0}
            max={MAX_FRESHNESS}
            disabled={useDefault}
            hint={!useDefault && value === undefined ? t('proxyCache.freshnessRule', { max: number(MAX_FRESHNESS) }) : t('proxyCache.freshnessHint')}
          />
          <CheckboxField label={t('proxyCache.useDefault')} checked={useDefault} onChange={setUseDefault} />
          {saved && <Notice kind="success">{t('common.saved')}</Notice>}
          {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
          <button type="submit" className="primary" disabled={save.busy || (!useDefault && value === undefined)}>
            {t('common.save')}
          </button>
        </form>
      )}
      <h3>{t('proxyCache.howTitle')}</h3>
      <p>{t('proxyCache.how1', { project: project.name, registry: proxy.registry })}</p>
      <div className="pt-copy">
        <Copyable text={example} what={t('proxyCache.exampleWhat')} />
      </div>
      <p>{t('proxyCache.how2')}</p>
      <p>{t('proxyCache.how3')}</p>
      <p className="muted">{t('proxyCache.how4')}</p>
    </section>
  );
}
