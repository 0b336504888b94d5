// The parts of an artifact's page that show its content: an index's platforms, an image's layers,
// config and build history, its annotations, and the artifacts referring to it.
import { Fragment, type ReactNode } from 'react';
import type { ConfigSummary, ManifestSummary, Referrer } from '../../api/repositories';
import { Link } from '../../app/router';
import { CopyButton } from '../../components/CopyButton';
import { EmptyState } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { KIND_LABEL, artifactKind, artifactPath, contentTime, platformLabel, shortDigest } from './format';

/** A plain table of a few hundred rows at most (the server caps them): a caption, scrolling on narrow screens. */
function Table({ caption, head, children, foot }: { caption: string; head: ReactNode; children: ReactNode; foot?: ReactNode }) {
  return (
    <div className="table-wrap repo-stack" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>{head}</thead>
        <tbody>{children}</tbody>
        {foot && <tfoot>{foot}</tfoot>}
      </table>
    </div>
  );
}

/** A digest shortened, with the whole one copyable; linked to its artifact page when `to` is set. */
function Digest({ digest, to }: { digest: string; to?: string }) {
  const { t } = useI18n();
  const short = <code>{shortDigest(digest)}</code>;
  return (
    <span className="copyable artifact-digest">
      {to ? (
        <Link to={to} title={digest}>
          {short}
        </Link>
      ) : (
        <span title={digest}>{short}</span>
      )}
      <CopyButton text={digest} what={t('artifact.digestWhat', { digest: shortDigest(digest) })} />
    </span>
  );
}

/** An index's entries: the platform images (linked) and any attached manifests. */
export function Platforms({ name, manifest }: { name: string; manifest: ManifestSummary }) {
  const { t, bytes } = useI18n();
  return (
    <section>
      <h2 id="artifact-platforms">{t('artifact.platforms.title')}</h2>
      <Table
        caption={t('artifact.platforms.caption')}
        head={
          <tr>
            <th scope="col">{t('artifact.platforms.platform')}</th>
            <th scope="col">{t('artifact.col.digest')}</th>
            <th scope="col" className="num">
              {t('artifact.col.size')}
            </th>
            <th scope="col">{t('artifact.col.mediaType')}</th>
          </tr>
        }
      >
        {manifest.manifests.map((m) => (
          <tr key={m.digest}>
            <td data-label={t('artifact.platforms.platform')}>{m.platform && m.platform.os !== 'unknown' ? platformLabel(m.platform) : <span className="muted">{m.artifactType ?? t('artifact.platforms.attached')}</span>}</td>
            <td data-label={t('artifact.col.digest')}>
              <Digest digest={m.digest} to={artifactPath(name, m.digest)} />
            </td>
            <td className="num" data-label={t('artifact.col.size')}>
              {bytes(m.size)}
            </td>
            <td data-label={t('artifact.col.mediaType')}>
              <code>{m.mediaType}</code>
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

/** An image's layers in order, with their total (compressed, as stored). */
export function Layers({ manifest }: { manifest: ManifestSummary }) {
  const { t, bytes, number } = useI18n();
  const total = manifest.layers.reduce((sum, l) => sum + l.size, 0);
  return (
    <section>
      <h2 id="artifact-layers">{t('artifact.layers.title', { count: number(manifest.layers.length) })}</h2>
      <Table
        caption={t('artifact.layers.caption')}
        head={
          <tr>
            <th scope="col" className="num">
              {t('artifact.layers.index')}
            </th>
            <th scope="col">{t('artifact.col.digest')}</th>
            <th scope="col" className="num">
              {t('artifact.col.size')}
            </th>
            <th scope="col">{t('artifact.col.mediaType')}</th>
          </tr>
        }
        foot={
          <tr>
            <th scope="row" colSpan={2}>
              {t('artifact.layers.total')}
            </th>
            <td className="num">{bytes(total)}</td>
            <td />
          </tr>
        }
      >
        {manifest.layers.map((l, i) => (
          <tr key={`${i}-${l.digest}`}>
            <td className="num" data-label={t('artifact.layers.index')}>
              {number(i + 1)}
            </td>
            <td data-label={t('artifact.col.digest')}>
              <Digest digest={l.digest} />
            </td>
            <td className="num" data-label={t('artifact.col.size')}>
              {bytes(l.size)}
            </td>
            <td data-label={t('artifact.col.mediaType')}>
              <code>{l.mediaType}</code>
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

const command = (parts: string[] | null) => (parts && parts.length > 0 ? <code>{parts.map((p) => (/[\s"']/.test(p) ? JSON.stringify(p) : p)).join(' ')}</code> : '—');

/** An image's configuration: platform, entrypoint and command, environment, ports, labels, then its build history. */
export function Config({ config }: { config: ConfigSummary }) {
  const { t, dateTime, number } = useI18n();
  const labels = Object.entries(config.labels);
  return (
    <section>
      <h2 id="artifact-config">{t('artifact.config.title')}</h2>
      <div className="card">
        <dl className="props">
          <dt>{t('artifact.config.platform')}</dt>
          <dd>{[config.os, config.architecture, config.variant].filter(Boolean).join('/') || '—'}</dd>
          <dt>{t('artifact.config.created')}</dt>
          <dd>{contentTime(dateTime, config.created)}</dd>
          {config.author && (
            <>
              <dt>{t('artifact.config.author')}</dt>
              <dd>{config.author}</dd>
            </>
          )}
          <dt>{t('artifact.config.entrypoint')}</dt>
          <dd>{command(config.entrypoint)}</dd>
          <dt>{t('artifact.config.cmd')}</dt>
          <dd>{command(config.cmd)}</dd>
          <dt>{t('artifact.config.workingDir')}</dt>
          <dd>{config.workingDir ? <code>{config.workingDir}</code> : '—'}</dd>
          <dt>{t('artifact.config.user')}</dt>
          <dd>{config.user ? <code>{config.user}</code> : <span className="muted">{t('artifact.config.userDefault')}</span>}</dd>
          <dt>{t('artifact.config.ports')}</dt>
          <dd>{config.exposedPorts.length > 0 ? config.exposedPorts.map((p) => <code key={p} className="artifact-item">{p}</code>) : '—'}</dd>
          <dt>{t('artifact.config.env')}</dt>
          <dd>
            {config.env.length > 0 ? (
              <ul className="artifact-list">
                {config.env.map((e, i) => (
                  <li key={i}>
                    <code>{e}</code>
                  </li>
                ))}
              </ul>
            ) : (
              '—'
            )}
          </dd>
          <dt>{t('artifact.config.labels', { count: number(labels.length) })}</dt>
          <dd>
            {labels.length > 0 ? (
              <ul className="artifact-list">
                {labels.map(([k, v]) => (
                  <li key={k}>
                    <code>{k}</code> = <code>{v}</code>
                  </li>
                ))}
              </ul>
            ) : (
              '—'
            )}
          </dd>
        </dl>
      </div>
      {config.history.length > 0 && (
        <>
          <h3>{t('artifact.history.title')}</h3>
          <Table
            caption={t('artifact.history.caption')}
            head={
              <tr>
                <th scope="col" className="num">
                  {t('artifact.layers.index')}
                </th>
                <th scope="col">{t('artifact.history.createdBy')}</th>
                <th scope="col">{t('artifact.history.created')}</th>
              </tr>
            }
          >
            {config.history.map((h, i) => (
              <tr key={i}>
                <td className="num" data-label={t('artifact.layers.index')}>
                  {number(i + 1)}
                </td>
                <td data-label={t('artifact.history.createdBy')}>
                  {h.createdBy ? <code className="artifact-history">{h.createdBy}</code> : '—'}
                  {h.emptyLayer && <span className="badge artifact-item">{t('artifact.history.empty')}</span>}
                  {h.comment && <div className="muted">{h.comment}</div>}
                </td>
                <td data-label={t('artifact.history.created')}>{contentTime(dateTime, h.created)}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </section>
  );
}

/** Key-value annotations of the manifest (title, source, version, signatures' payloads…). */
export function Annotations({ annotations }: { annotations: Record<string, string> }) {
  const { t } = useI18n();
  const entries = Object.entries(annotations);
  if (entries.length === 0) return null;
  return (
    <section>
      <h2 id="artifact-annotations">{t('artifact.annotations')}</h2>
      <div className="card">
        <dl className="props">
          {entries.map(([k, v]) => (
            <Fragment key={k}>
              <dt>
                <code>{k}</code>
              </dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      </div>
    </section>
  );
}

/** Signatures, SBOMs and other artifacts whose subject is this one. */
export function Referrers({ name, referrers }: { name: string; referrers: Referrer[] }) {
  const { t, bytes, dateTime } = useI18n();
  return (
    <section>
      <h2 id="artifact-referrers">{t('artifact.referrers.title')}</h2>
      {referrers.length === 0 ? (
        <EmptyState title={t('artifact.referrers.none')}>
          <p className="muted">{t('artifact.referrers.hint')}</p>
        </EmptyState>
      ) : (
        <Table
          caption={t('artifact.referrers.caption')}
          head={
            <tr>
              <th scope="col">{t('artifact.col.type')}</th>
              <th scope="col">{t('artifact.col.digest')}</th>
              <th scope="col" className="num">
                {t('artifact.col.size')}
              </th>
              <th scope="col">{t('artifact.col.pushed')}</th>
            </tr>
          }
        >
          {referrers.map((r) => {
            const kind = artifactKind(r.mediaType, r.artifactType);
            return (
              <tr key={r.digest}>
                <td data-label={t('artifact.col.type')}>
                  {kind === 'other' ? '' : t(KIND_LABEL[kind])}
                  {r.artifactType && <div className="muted">{r.artifactType}</div>}
                </td>
                <td data-label={t('artifact.col.digest')}>
                  <Digest digest={r.digest} to={artifactPath(name, r.digest)} />
                </td>
                <td className="num" data-label={t('artifact.col.size')}>
                  {bytes(r.size)}
                </td>
                <td data-label={t('artifact.col.pushed')}>{dateTime(r.pushedAt)}</td>
              </tr>
            );
          })}
        </Table>
      )}
    </section>
  );
}
