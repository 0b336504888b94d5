import { useState } from 'react';
import { ApiError, api, repoPath, seg } from '../../api/client';
import type { Project } from '../../api/projects';
import type { ArtifactDetail } from '../../api/repositories';
import { Link, navigate } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { registryHost, useSession } from '../../app/session';
import { Copyable } from '../../components/CopyButton';
import { ConfirmDialog } from '../../components/Dialog';
import { useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { ErrorState, Loading, Notice } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { Annotations, Config, Layers, Platforms, Referrers } from './ArtifactSections';
import { KIND_LABEL, artifactKind, artifactPath, platformLabel, shortDigest } from './format';

/** One artifact: what it is, how to pull it, its platforms or layers, config, history and referrers; deletion. */
export function ArtifactPage({ params }: PageProps) {
  const { t } = useI18n();
  const name = params.name ?? '';
  const reference = params.reference ?? '';
  const projectName = name.split('/')[0] ?? '';
  const apiBase = `/repositories/${seg(name)}`;
  const detail = useApi((signal) => api.get<ArtifactDetail>(`${apiBase}/artifacts/${seg(reference)}`, undefined, signal), [name, reference]);
  const project = useApi((signal) => api.get<Project>(`/projects/${seg(projectName)}`, undefined, signal), [projectName]);
  const canDelete = project.data?.permissions.includes('repository.delete') ?? false;
  const [deleting, setDeleting] = useState(false);
  const [deletingTag, setDeletingTag] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ kind: 'success' | 'warning'; text: string } | null>(null);

  const repoURL = `/repositories/${repoPath(name)}`;
  const crumbs = [
    { label: t('projects.title'), to: '/projects' },
    { label: projectName, to: `/projects/${encodeURIComponent(projectName)}` },
    { label: name, to: repoURL },
    { label: reference.includes(':') ? shortDigest(reference) : reference, to: artifactPath(name, reference) },
  ];
  const a = detail.data;
  const title = t('artifact.title', { name, ref: a ? (a.tags[0] ?? shortDigest(a.digest)) : reference.includes(':') ? shortDigest(reference) : reference });

  if (!a) {
    return (
      <>
        <PageHeader title={title} crumbs={crumbs} />
        {detail.error !== undefined && !detail.loading ? <ErrorState error={detail.error} retry={detail.reload} /> : <Loading />}
      </>
    );
  }

  const remove = async () => {
    try {
      await api.del(`${apiBase}/artifacts/${seg(a.digest)}`);
    } catch (err) {
      // The caller may delete here, so a refusal is an immutability rule covering one of its tags.
      if (err instanceof ApiError && err.status === 403 && canDelete) {
        setNotice({ kind: 'warning', text: t('artifact.immutable.artifact', { digest: shortDigest(a.digest) }) });
        return;
      }
      throw err;
    }
    navigate(repoURL);
  };

  const removeTag = async (tag: string) => {
    try {
      await api.del(`${apiBase}/tags/${seg(tag)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403 && canDelete) {
        setNotice({ kind: 'warning', text: t('artifact.immutable.tag', { tag }) });
        return;
      }
      throw err;
    }
    setNotice({ kind: 'success', text: t('artifact.deleteTag.done', { tag }) });
    // Opened by this tag: the artifact stays, at its digest's address.
    if (reference === tag) navigate(artifactPath(name, a.digest), { replace: true });
    else detail.reload();
  };

  return (
    <>
      <PageHeader
        title={title}
        crumbs={crumbs}
        actions={
          canDelete && (
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              {t('artifact.delete.button')}
            </button>
          )
        }
      />
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <Overview detail={a} name={name} />
      <PullCommands detail={a} name={name} onDeleteTag={canDelete ? setDeletingTag : undefined} />
      {a.manifest && a.manifest.manifests.length > 0 && <Platforms name={name} manifest={a.manifest} />}
      {a.manifest && a.manifest.layers.length > 0 && <Layers manifest={a.manifest} />}
      {a.config && <Config config={a.config} />}
      {a.manifest && <Annotations annotations={a.manifest.annotations} />}
      <Referrers name={name} referrers={a.referrers} />
      <ConfirmDialog
        open={deleting}
        title={t('artifact.delete.title', { digest: shortDigest(a.digest) })}
        message={
          <p className="repo-dialog-text">{a.tagCount > 0 ? t('artifact.delete.textTags', { digest: a.digest, count: a.tagCount, tags: a.tags.slice(0, 10).join(', ') }) : t('artifact.delete.text', { digest: a.digest })}</p>
        }
        confirmLabel={t('artifact.delete.confirm')}
        onConfirm={remove}
        onClose={() => setDeleting(false)}
      />
      <ConfirmDialog
        open={deletingTag !== null}
        title={t('artifact.deleteTag.title', { tag: deletingTag ?? '' })}
        message={<p>{t('artifact.deleteTag.text', { tag: deletingTag ?? '', name })}</p>}
        confirmLabel={t('artifact.deleteTag.confirm')}
        onConfirm={() => removeTag(deletingTag ?? '')}
        onClose={() => setDeletingTag(null)}
      />
    </>
  );
}

/** Digest, kind, size, who pushed it and when, last pull, and what it refers to. */
function Overview({ detail: a, name }: { detail: ArtifactDetail; name: string }) {
  const { t, bytes, dateTime } = useI18n();
  const kind = artifactKind(a.mediaType, a.artifactType);
  return (
    <section className="card" aria-labelledby="artifact-overview">
      <h2 id="artifact-overview" className="visually-hidden">
        {t('artifact.overview')}
      </h2>
      <dl className="props">
        <dt>{t('artifact.col.digest')}</dt>
        <dd>
          <Copyable text={a.digest} what={t('artifact.digestWhat', { digest: shortDigest(a.digest) })} />
        </dd>
        <dt>{t('artifact.col.type')}</dt>
        <dd>
          {kind === 'other' ? t('artifact.kind.other') : t(KIND_LABEL[kind])}
          {a.platforms.length > 0 && <span className="muted"> — {a.platforms.map(platformLabel).join(', ')}</span>}
        </dd>
        <dt>{t('artifact.col.mediaType')}</dt>
        <dd>
          <code>{a.mediaType}</code>
        </dd>
        {a.artifactType && (
          <>
            <dt>{t('artifact.artifactType')}</dt>
            <dd>
              <code>{a.artifactType}</code>
            </dd>
          </>
        )}
        <dt>{t('artifact.col.size')}</dt>
        <dd>{bytes(a.size)}</dd>
        <dt>{t('artifact.col.pushed')}</dt>
        <dd>{a.pushedBy ? t('artifact.pushedBy', { when: dateTime(a.pushedAt), who: a.pushedBy }) : dateTime(a.pushedAt)}</dd>
        <dt>{t('artifact.col.pulled')}</dt>
        <dd>{a.lastPulledAt ? dateTime(a.lastPulledAt) : t('common.never')}</dd>
        {a.manifest?.subject && (
          <>
            <dt>{t('artifact.subject')}</dt>
            <dd>
              <Link to={artifactPath(name, a.manifest.subject)}>
                <code>{shortDigest(a.manifest.subject)}</code>
              </Link>
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}

/** `docker pull` for each tag shown and for the digest, host from the external URL; a delete button per tag for those who may. */
function PullCommands({ detail: a, name, onDeleteTag }: { detail: ArtifactDetail; name: string; onDeleteTag?: ((tag: string) => void) | undefined }) {
  const { t, number } = useI18n();
  const { info } = useSession();
  const host = registryHost(info);
  return (
    <section aria-labelledby="artifact-tags">
      <h2 id="artifact-tags">{t('artifact.tags.title', { count: number(a.tagCount) })}</h2>
      <ul className="artifact-pulls">
        {a.tags.map((tag) => (
          <li key={tag}>
            <span className="badge">{tag}</span> <Copyable text={`docker pull ${host}/${name}:${tag}`} what={t('artifact.pullWhat', { ref: tag })} />
            {onDeleteTag && (
              <button type="button" className="artifact-tag-delete" onClick={() => onDeleteTag(tag)} aria-label={t('artifact.deleteTag.label', { tag })}>
                {t('artifact.deleteTag.short')}
              </button>
            )}
          </li>
        ))}
        <li>
          <span className="badge">{t('artifact.tags.byDigest')}</span> <Copyable text={`docker pull ${host}/${name}@${a.digest}`} what={t('artifact.pullWhat', { ref: shortDigest(a.digest) })} />
        </li>
      </ul>
      {a.tagCount > a.tags.length && <p className="muted">{t('artifact.tags.more', { shown: number(a.tags.length), count: number(a.tagCount) })}</p>}
      {a.tagCount === 0 && <p className="muted">{t('artifact.tags.none')}</p>}
    </section>
  );
}
