import { useState, type FormEvent } from 'react';
import { api, seg, type Page } from '../../../api/client';
import type { ImmutabilityRule, Selector } from '../../../api/project-tabs';
import type { Project } from '../../../api/projects';
import { DataTable, type Column } from '../../../components/DataTable';
import { ConfirmDialog } from '../../../components/Dialog';
import { SelectField, TextField } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { EmptyState, Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';

/** Tag immutability rules: listed for everyone who sees the project; added, switched and deleted with project.update. */
export function ImmutabilitySection({ project }: { project: Project }) {
  const { t, dateTime } = useI18n();
  const manage = project.permissions.includes('project.update');
  const base = `/projects/${seg(project.name)}/immutability`;
  const [reloadKey, setReloadKey] = useState(0);
  const [deleting, setDeleting] = useState<ImmutabilityRule | null>(null);
  const [notice, setNotice] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);
  const reload = () => setReloadKey((k) => k + 1);
  const selectorText = (s: Selector) => t(s.exclude ? 'immutability.notMatching' : 'immutability.matching', { pattern: s.pattern });

  const toggle = async (rule: ImmutabilityRule) => {
    setNotice(null);
    try {
      await api.patch(`${base}/${rule.id}`, { disabled: !rule.disabled });
      setNotice({ kind: 'success', text: t(rule.disabled ? 'immutability.enabledNotice' : 'immutability.disabledNotice', { id: rule.id }) });
    } catch (err) {
      setNotice({ kind: 'error', text: errorMessage(t, err) });
    }
    reload();
  };

  const columns: Column<ImmutabilityRule>[] = [
    { key: 'id', header: t('immutability.col.rule'), render: (r) => t('immutability.ruleId', { id: r.id }) },
    { key: 'repositories', header: t('immutability.col.repositories'), render: (r) => selectorText(r.repositories) },
    { key: 'tags', header: t('immutability.col.tags'), render: (r) => selectorText(r.tags) },
    { key: 'status', header: t('common.status'), render: (r) => <span className={`badge ${r.disabled ? '' : 'badge-ok'}`}>{r.disabled ? t('common.disabled') : t('common.enabled')}</span> },
    { key: 'created', header: t('common.created'), render: (r) => t('immutability.createdBy', { time: dateTime(r.createdAt), who: r.createdBy ?? t('common.unknown') }) },
  ];
  if (manage) {
    columns.push({
      key: 'actions',
      header: t('common.actions'),
      render: (r) => (
        <span className="pt-actions">
          <button type="button" onClick={() => void toggle(r)} aria-label={t(r.disabled ? 'immutability.enableLabel' : 'immutability.disableLabel', { id: r.id })}>
            {r.disabled ? t('immutability.enable') : t('immutability.disable')}
          </button>
          <button type="button" onClick={() => setDeleting(r)} aria-label={t('immutability.deleteLabel', { id: r.id })}>
            {t('common.delete')}
          </button>
        </span>
      ),
    });
  }

  return (
    <section aria-labelledby="pt-immutability-h">
      <h2 id="pt-immutability-h">{t('immutability.title')}</h2>
      <p className="muted">{t('immutability.intro')}</p>
      {manage && (
        <AddRule
          base={base}
          onAdded={(rule) => {
            setNotice({ kind: 'success', text: t('immutability.added', { id: rule.id }) });
            reload();
          }}
        />
      )}
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <DataTable<ImmutabilityRule>
        caption={t('immutability.caption', { project: project.name })}
        columns={columns}
        rowKey={(r) => String(r.id)}
        queryPrefix="im."
        reloadKey={reloadKey}
        load={({ page, pageSize }, signal) => api.get<Page<ImmutabilityRule>>(base, { page, pageSize }, signal)}
        empty={<EmptyState title={t('immutability.empty')} />}
      />
      <ConfirmDialog
        open={deleting !== null}
        title={t('immutability.deleteTitle')}
        message={deleting ? t('immutability.deleteConfirm', { id: deleting.id, repositories: selectorText(deleting.repositories), tags: selectorText(deleting.tags) }) : ''}
        confirmLabel={t('common.delete')}
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`${base}/${deleting.id}`);
          setNotice({ kind: 'success', text: t('immutability.deleted', { id: deleting.id }) });
          reload();
        }}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

function AddRule({ base, onAdded }: { base: string; onAdded: (rule: ImmutabilityRule) => void }) {
  const { t } = useI18n();
  const [repoPattern, setRepoPattern] = useState('**');
  const [repoExclude, setRepoExclude] = useState(false);
  const [tagPattern, setTagPattern] = useState('');
  const [tagExclude, setTagExclude] = useState(false);
  const add = useAction();
  const options = [
    { value: 'match', label: t('immutability.form.matching') },
    { value: 'exclude', label: t('immutability.form.notMatching') },
  ];

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!repoPattern.trim() || !tagPattern.trim()) return;
    let rule: ImmutabilityRule | undefined;
    const ok = await add.run(async () => {
      rule = await api.post<ImmutabilityRule>(base, { repositories: { pattern: repoPattern.trim(), exclude: repoExclude }, tags: { pattern: tagPattern.trim(), exclude: tagExclude } });
    });
    if (ok && rule) {
      setTagPattern('');
      onAdded(rule);
    }
  };

  return (
    <form className="card pt-form" onSubmit={submit} aria-labelledby="pt-immutability-add-h">
      <h3 id="pt-immutability-add-h">{t('immutability.form.title')}</h3>
      <div className="pt-row">
        <SelectField label={t('immutability.form.repositories')} value={repoExclude ? 'exclude' : 'match'} onChange={(v) => setRepoExclude(v === 'exclude')} options={options} />
        <TextField label={t('immutability.form.repoPattern')} value={repoPattern} onChange={setRepoPattern} required maxLength={256} />
      </div>
      <div className="pt-row">
        <SelectField label={t('immutability.form.tags')} value={tagExclude ? 'exclude' : 'match'} onChange={(v) => setTagExclude(v === 'exclude')} options={options} />
        <TextField label={t('immutability.form.tagPattern')} value={tagPattern} onChange={setTagPattern} required maxLength={256} placeholder="v*" />
      </div>
      <p className="field-hint">{t('immutability.form.hint')}</p>
      {add.error !== undefined && <Notice kind="error">{errorMessage(t, add.error)}</Notice>}
      <button type="submit" className="primary" disabled={add.busy || !tagPattern.trim() || !repoPattern.trim()}>
        {t('immutability.form.submit')}
      </button>
    </form>
  );
}
