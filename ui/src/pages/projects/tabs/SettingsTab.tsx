import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, api, seg } from '../../../api/client';
import type { ProjectTabProps, UpdateProject } from '../../../api/projects';
import { Link, navigate } from '../../../app/router';
import { ConfirmDialog } from '../../../components/Dialog';
import { CheckboxField } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { QuotaField, quotaBytes, quotaInput, type QuotaInput } from '../QuotaField';

/** Visibility and quota (project.update), and deleting the project (project.delete, only when it is empty). */
export function SettingsTab({ project, reload }: ProjectTabProps) {
  const { t, number } = useI18n();
  const canUpdate = project.permissions.includes('project.update');
  const canDelete = project.permissions.includes('project.delete');
  const [isPublic, setPublic] = useState(project.public);
  const [quota, setQuota] = useState<QuotaInput>(quotaInput(project.quotaBytes));
  const [saved, setSaved] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [stillHolds, setStillHolds] = useState<number | null>(null);
  const save = useAction();

  // A reload after saving (or another tab's change) shows what the server now has.
  useEffect(() => {
    setPublic(project.public);
    setQuota(quotaInput(project.quotaBytes));
  }, [project.public, project.quotaBytes]);

  const bytes = quotaBytes(quota);
  const quotaError = bytes === undefined ? t('projects.quota.invalid') : undefined;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    if (bytes === undefined) return;
    const body: UpdateProject = {};
    if (isPublic !== project.public) body.public = isPublic;
    if (bytes !== project.quotaBytes) body.quotaBytes = bytes;
    if (await save.run(() => api.patch(`/projects/${seg(project.name)}`, body))) {
      setSaved(true);
      reload();
    }
  };

  const remove = async () => {
    try {
      await api.del(`/projects/${seg(project.name)}`);
    } catch (err) {
      // Not an error of the dialog: the project is fine, it just is not empty. Said below, with what to do.
      if (err instanceof ApiError && err.status === 409) {
        const detail = err.detail as { repositoryCount?: unknown } | undefined;
        setStillHolds(typeof detail?.repositoryCount === 'number' ? detail.repositoryCount : project.repositoryCount);
        return;
      }
      throw err;
    }
    navigate('/projects');
  };

  return (
    <section aria-labelledby="project-settings">
      <h2 id="project-settings">{t('projects.tab.settings')}</h2>
      {canUpdate && (
        <form className="card" onSubmit={submit} noValidate>
          <h3>{t('projects.settings.general')}</h3>
          <CheckboxField label={t('projects.create.public')} checked={isPublic} onChange={setPublic} hint={t('projects.create.publicHint')} />
          <QuotaField value={quota} onChange={setQuota} error={quotaError} />
          {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
          {saved && <Notice kind="success">{t('common.saved')}</Notice>}
          <button type="submit" className="primary" disabled={save.busy || quotaError !== undefined}>
            {t('common.save')}
          </button>
        </form>
      )}
      {canDelete && (
        <div className="card projects-danger">
          <h3>{t('projects.settings.deleteTitle')}</h3>
          <p>{t('projects.settings.deleteText')}</p>
          {project.repositoryCount > 0 && <p className="muted">{t('projects.settings.deleteNotEmpty', { count: number(project.repositoryCount) })}</p>}
          {stillHolds !== null && (
            <Notice kind="warning">
              {t('projects.settings.holds', { name: project.name, count: number(stillHolds) })}{' '}
              <Link to={`/projects/${encodeURIComponent(project.name)}`}>{t('projects.settings.holdsLink')}</Link>
            </Notice>
          )}
          <button type="button" className="danger" onClick={() => setDeleting(true)}>
            {t('projects.settings.delete')}
          </button>
        </div>
      )}
      <ConfirmDialog
        open={deleting}
        title={t('projects.settings.confirmTitle', { name: project.name })}
        message={<p>{t('projects.settings.confirmText', { name: project.name })}</p>}
        confirmLabel={t('projects.settings.delete')}
        confirmWord={project.name}
        onConfirm={remove}
        onClose={() => setDeleting(false)}
      />
    </section>
  );
}
