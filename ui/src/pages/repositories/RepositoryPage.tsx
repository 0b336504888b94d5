import { useState } from 'react';
import { ApiError, api, repoPath, seg, type Page } from '../../api/client';
import type { Project } from '../../api/projects';
import type { Artifact } from '../../api/repositories';
import { Link, navigate } from '../../app/router';
import type { PageProps } from '../../app/routes';
import { registryHost, useSession } from '../../app/session';
import { CopyButton, Copyable } from '../../components/CopyButton';
import { DataTable, type Column } from '../../components/DataTable';
import { ConfirmDialog } from '../../components/Dialog';
import { useApi } from '../../components/hooks';
import { PageHeader } from '../../components/Page';
import { EmptyState, Notice } from '../../components/states';
import { useI18n } from '../../i18n/index';
import { KIND_LABEL, artifactKind, artifactPath, platformLabel, shortDigest } from './format';

/** Tags shown in a row; the rest are counted ("+N more") and listed on the artifact's page. */
const ROW_TAGS = 5;

type Pending = { kind: 'tag'; tag: string; digest: string } | { kind: 'artifact'; artifact: Artifact } | { kind: 'repository' };

/** A repository's artifacts (tags, digest, kind, platforms, who pushed, last pull), paged by the server, with deletion. */
export function RepositoryPage({ params }: PageProps) {
  const { t, bytes, dateTime } = useI18n();
  const { info } = useSession();
  const name = params.name ?? '';
  const projectName = name.split('/')[0] ?? '';
  const host = registryHost(info);
  const project = useApi((signal) => api.get<Project>(`/projects/${seg(projectName)}`, undefined, signal), [projectName]);
  const canDelete = project.data?.permissions.includes('repository.delete') ?? false;
  const [pending, setPending] = useState<Pending | null>(null);
  const [generation, setGeneration] = useState(0);
  const [notice, setNotice] = useState<{ kind: 'success' | 'warning'; text: string } | null>(null);

  const base = `/repositories/${repoPath(name)}`;
  // The API takes the name with its slashes as %2F too, which stays unambiguous when a component is "tags" or "artifacts".
  const apiBase = `/repositories/${seg(name)}`;
  const crumbs = [
    { label: t('projects.title'), to: '/projects' },
    { label: projectName, to: `/projects/${encodeURIComponent(projectName)}` },
    { label: name, to: base },
  ];

  const pullRef = (a: Artifact) => (a.tags[0] ? `${host}/${name}:${a.tags[0]}` : `${host}/${name}@${a.digest}`);

  const columns: Column<Artifact>[] = [
    {
      key: 'tags',
      header: t('artifact.col.tags'),
      sort: 'tag',
      render: (a) => (
        <ul className="repo-tags">
          {a.tags.length === 0 && <li className="muted">{t('artifact.untagged')}</li>}
          {a.tags.slice(0, ROW_TAGS).map((tag) => (
            <li key={tag} className="badge">
              {tag}
              {canDelete && (
                <button type="button" className="repo-tag-delete" aria-label={t('artifact.deleteTag.label', { tag })} onClick={() => setPending({ kind: 'tag', tag, digest: a.digest })}>
                  <span aria-hidden="true">×</span>
                </button>
              )}
            </li>
          ))}
          {a.tagCount > Math.min(a.tags.length, ROW_TAGS) && (
            <li>
              <Link to={artifactPath(name, a.digest)}>{t('artifact.moreTags', { count: a.tagCount - Math.min(a.tags.length, ROW_TAGS) })}</Link>
            </li>
          )}
        </ul>
      ),
    },
    {
      key: 'digest',
      header: t('artifact.col.digest'),
      render: (a) => (
        <span className="copyable repo-digest">
          <Link to={artifactPath(name, a.digest)} title={a.digest}>
            <code>{shortDigest(a.digest)}</code>
          </Link>
          <CopyButton text={a.digest} what={t('artifact.digestWhat', { digest: shortDigest(a.digest) })} />
        </span>
      ),
    },
    {
      key: 'type',
      header: t('artifact.col.type'),
      render: (a) => {
        const kind = artifactKind(a.mediaType, a.artifactType);
        return (
          <>
            <span>{kind === 'other' ? (a.artifactType ?? a.mediaType) : t(KIND_LABEL[kind])}</span>
            {a.platforms.length > 0 && <div className="muted repo-platforms">{a.platforms.map(platformLabel).join(', ')}</div>}
            {a.subject && (
              <div className="muted">
                {t('artifact.refersTo')} <Link to={artifactPath(name, a.subject)}>{shortDigest(a.subject)}</Link>
              </div>
            )}
          </>
        );
      },
    },
    { key: 'size', header: t('artifact.col.size'), className: 'num', render: (a) => bytes(a.size) },
    {
      key: 'pushed',
      header: t('artifact.col.pushed'),
      sort: 'pushedAt',
      render: (a) => (
        <>
          {dateTime(a.pushedAt)}
          {a.pushedBy && <div className="muted">{t('artifact.by', { who: a.pushedBy })}</div>}
        </>
      ),
    },
    { key: 'pulled', header: t('artifact.col.pulled'), sort: 'lastPulledAt', render: (a) => (a.lastPulledAt ? dateTime(a.lastPulledAt) : <span className="muted">{t('common.never')}</span>) },
    {
      key: 'pull',
      header: t('artifact.col.pull'),
      render: (a) => <CopyButton text={`docker pull ${pullRef(a)}`} what={t('artifact.pullWhat', { ref: a.tags[0] ?? shortDigest(a.digest) })} />,
    },
  ];
  if (canDelete) {
    columns.push({
      key: 'actions',
      header: t('common.actions'),
      render: (a) => (
        <button type="button" onClick={() => setPending({ kind: 'artifact', artifact: a })} aria-label={t('artifact.delete.label', { digest: shortDigest(a.digest) })}>
          {t('common.delete')}
        </button>
      ),
    });
  }

  /** Runs a deletion; a 403 the caller's role allows is an immutability rule: explained below instead of in the dialog. */
  const remove = async (path: string, immutableText: string, after: () => void) => {
    try {
      await api.del(path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403 && canDelete) {
        setNotice({ kind: 'warning', text: immutableText });
        return;
      }
      throw err;
    }
    after();
  };

  const confirm = (): { title: string; message: string; label: string; word?: string; run: () => Promise<void> } | null => {
    if (!pending) return null;
    if (pending.kind === 'tag') {
      return {
        title: t('artifact.deleteTag.title', { tag: pending.tag }),
        message: t('artifact.deleteTag.text', { tag: pending.tag, name }),
        label: t('artifact.deleteTag.confirm'),
        run: () =>
          remove(`${apiBase}/tags/${seg(pending.tag)}`, t('artifact.immutable.tag', { tag: pending.tag }), () => {
            setNotice({ kind: 'success', text: t('artifact.deleteTag.done', { tag: pending.tag }) });
            setGeneration((g) => g + 1);
          }),
      };
    }
    if (pending.kind === 'artifact') {
      const a = pending.artifact;
      return {
        title: t('artifact.delete.title', { digest: shortDigest(a.digest) }),
        message: a.tagCount > 0 ? t('artifact.delete.textTags', { digest: a.digest, count: a.tagCount, tags: a.tags.slice(0, 10).join(', ') }) : t('artifact.delete.text', { digest: a.digest }),
        label: t('artifact.delete.confirm'),
        run: () =>
          remove(`${apiBase}/artifacts/${seg(a.digest)}`, t('artifact.immutable.artifact', { digest: shortDigest(a.digest) }), () => {
            setNotice({ kind: 'success', text: t('artifact.delete.done', { digest: shortDigest(a.digest) }) });
            setGeneration((g) => g + 1);
          }),
      };
    }
    return {
      title: t('repository.delete.title', { name }),
      message: t('repository.delete.text', { name }),
      label: t('repository.delete.confirm'),
      word: name,
      run: () => remove(apiBase, t('artifact.immutable.repository', { name }), () => navigate(`/projects/${encodeURIComponent(projectName)}`)),
    };
  };
  const dialog = confirm();

  return (
    <>
      <PageHeader
        title={t('repository.title', { name })}
        crumbs={crumbs}
        actions={
          canDelete && (
            <button type="button" className="danger" onClick={() => setPending({ kind: 'repository' })}>
              {t('repository.delete.button')}
            </button>
          )
        }
      />
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <section className="repo-stack" aria-labelledby="repository-artifacts">
        <h2 id="repository-artifacts">{t('repository.artifacts')}</h2>
        <DataTable
          caption={t('repository.caption', { name })}
          columns={columns}
          rowKey={(a) => a.digest}
          defaultSort="-pushedAt"
          filterLabel={t('repository.filter')}
          reloadKey={generation}
          load={(list, signal) => api.get<Page<Artifact>>(`${apiBase}/artifacts`, { ...list }, signal)}
          empty={
            <EmptyState title={t('repository.empty.title')}>
              <p>{t('repository.empty.text')}</p>
              <Copyable text={`docker push ${host}/${name}:${t('repository.empty.tag')}`} what={t('artifact.pushWhat')} />
            </EmptyState>
          }
        />
      </section>
      <ConfirmDialog
        open={dialog !== null}
        title={dialog?.title ?? ''}
        message={<p className="repo-dialog-text">{dialog?.message}</p>}
        confirmLabel={dialog?.label ?? ''}
        {...(dialog?.word ? { confirmWord: dialog.word } : {})}
        onConfirm={async () => dialog?.run()}
        onClose={() => setPending(null)}
      />
    </>
  );
}
