import { api } from '../../api/client';
import type { ConnectionCheck } from '../../api/admin';
import type { PageProps } from '../../app/routes';
import { Copyable } from '../../components/CopyButton';
import { useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { ErrorState, Loading, Notice } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { SimpleTable } from './parts';

/** How this page's own request reached Berth, beside the configured external URLs; what disagrees and the fix. */
export function ConnectionPage(_props: PageProps) {
  const { t } = useI18n();
  const check = useApi((signal) => api.get<ConnectionCheck>('/system/connection', undefined, signal), []);
  const c = check.data;
  return (
    <>
      <PageHeader
        title={t('connection.title')}
        subtitle={t('connection.subtitle')}
        actions={
          <button type="button" onClick={check.reload} disabled={check.loading}>
            {t('connection.again')}
          </button>
        }
      />
      {check.error !== undefined && !check.loading ? (
        <ErrorState error={check.error} retry={check.reload} />
      ) : !c ? (
        <Loading />
      ) : (
        <>
          <Notice kind={c.agrees ? 'success' : 'warning'}>
            <p className="admin-verdict">{c.agrees ? t('connection.agrees') : t('connection.disagrees')}</p>
            <p className="admin-last">{c.agrees ? (c.externalURLs.length > 0 ? t('connection.agreesText', { origin: c.origin }) : t('connection.agreesNoURL')) : t('connection.disagreesText', { origin: c.origin })}</p>
          </Notice>
          <div className="grid">
            <section className="card" aria-labelledby="connection-request">
              <h2 id="connection-request" className="admin-card-title">
                {t('connection.request')}
              </h2>
              <dl className="props">
                <dt>{t('connection.origin')}</dt>
                <dd>
                  <code>{c.origin}</code>
                </dd>
                <dt>{t('connection.host')}</dt>
                <dd>{c.request.host === null ? <span className="muted">{t('connection.noHost')}</span> : <code>{c.request.host}</code>}</dd>
                <dt>{t('connection.scheme')}</dt>
                <dd>{c.request.scheme}</dd>
                <dt>{t('connection.source')}</dt>
                <dd>{t(`connection.source.${c.request.source}`)}</dd>
                <dt>{t('connection.peer')}</dt>
                <dd>
                  <code>{c.request.peer}</code>{' '}
                  {c.request.trustedProxy ? <span className="badge badge-ok">{t('connection.trusted')}</span> : <span className="badge">{t('connection.notTrusted')}</span>}
                </dd>
                <dt>{t('connection.client')}</dt>
                <dd>
                  <code>{c.request.client}</code>
                </dd>
              </dl>
            </section>
            <section className="card" aria-labelledby="connection-configured">
              <h2 id="connection-configured" className="admin-card-title">
                {t('connection.configured')}
              </h2>
              {c.externalURLs.length === 0 ? (
                <p className="muted">{t('connection.noExternalURL')}</p>
              ) : (
                <ul className="admin-plain-list">
                  {c.externalURLs.map((u) => (
                    <li key={u}>
                      <code>{u}</code>
                    </li>
                  ))}
                </ul>
              )}
              <p className="field-hint">{t('connection.configuredHint')}</p>
            </section>
          </div>
          <h2>{t('connection.forwarded')}</h2>
          {Object.keys(c.request.forwarded).length === 0 ? (
            <p className="muted">{t('connection.noForwarded')}</p>
          ) : (
            <>
              {!c.request.trustedProxy && <p>{t('connection.forwardedIgnored', { peer: c.request.peer })}</p>}
              <SimpleTable
                caption={t('connection.forwarded')}
                rows={Object.entries(c.request.forwarded)}
                rowKey={([name]) => name}
                columns={[
                  { key: 'name', header: t('connection.header'), render: ([name]) => <code>{name}</code> },
                  { key: 'value', header: t('connection.value'), render: ([, value]) => <code>{value}</code> },
                ]}
              />
            </>
          )}
          <h2>{t('connection.problems')}</h2>
          {c.problems.length === 0 ? (
            <p>{t('connection.noProblems')}</p>
          ) : (
            c.problems.map((p, i) => (
              <section key={`${p.id}-${i}`} className="card admin-problem" aria-labelledby={`connection-problem-${i}`}>
                <h3 id={`connection-problem-${i}`}>
                  {t(`connection.problem.${p.id}`)}
                  {p.mechanism && <span className="badge admin-mechanism">{t('connection.mechanism', { id: p.mechanism })}</span>}
                </h3>
                <p>{p.message}</p>
                <p>
                  <strong>{t('connection.fix')}</strong> {p.fix}
                </p>
              </section>
            ))
          )}
          <h2>{t('connection.doctor')}</h2>
          <p>{t('connection.doctorText')}</p>
          <p className="admin-copy">
            <Copyable text={c.doctorCommand} what={t('connection.doctorWhat')} />
          </p>
          <p className="field-hint">{t('connection.doctorHint')}</p>
        </>
      )}
    </>
  );
}
