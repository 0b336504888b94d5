// The form that creates or changes a replication rule, in a dialog. The API checks everything; its
// INVALID answer names fields, and each message is shown next to the field it names.
import { useEffect, useState, type FormEvent } from 'react';
import { api, seg, type Page } from '../../api/client';
import { fieldErrors, type DestinationMode, type Direction, type ReplicationRule, type ReplicationRuleInput, type Selector, type Trigger } from '../../api/operations';
import { Dialog } from '../../components/Dialog';
import { CheckboxField, SelectField, TextField, TextAreaField } from '../../components/Field';
import { useAction, useApi } from '../../components/hooks';
import { Notice, errorMessage } from '../../components/states';
import { Link } from '../../app/router';
import { useI18n } from '../../i18n/index';

interface FormState {
  name: string;
  description: string;
  direction: Direction;
  registry: string;
  repositories: string;
  tags: string;
  artifactTypes: string;
  mode: DestinationMode;
  namespace: string;
  levels: string;
  trigger: Trigger;
  cron: string;
  replicateDeletes: boolean;
  override: boolean;
  bandwidthKiB: string;
  concurrency: string;
  enabled: boolean;
}

const EMPTY: FormState = {
  name: '',
  description: '',
  direction: 'push',
  registry: '',
  repositories: '',
  tags: '',
  artifactTypes: '',
  mode: 'keep',
  namespace: '',
  levels: '1',
  trigger: 'manual',
  cron: '',
  replicateDeletes: false,
  override: true,
  bandwidthKiB: '',
  concurrency: '4',
  enabled: true,
};

// One pattern a line; a leading "!" leaves out what matches.
const linesOf = (list: Selector[]) => list.map((s) => `${s.exclude ? '!' : ''}${s.pattern}`).join('\n');
const selectorsOf = (text: string): Selector[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => (l.startsWith('!') ? { pattern: l.slice(1).trim(), exclude: true } : { pattern: l, exclude: false }));

function stateOf(rule: ReplicationRule): FormState {
  return {
    name: rule.name,
    description: rule.description ?? '',
    direction: rule.direction,
    registry: rule.registry,
    repositories: linesOf(rule.filters.repositories),
    tags: linesOf(rule.filters.tags),
    artifactTypes: (rule.filters.artifactTypes ?? []).join(', '),
    mode: rule.destination.mode,
    namespace: rule.destination.namespace ?? '',
    levels: String(rule.destination.levels ?? 1),
    trigger: rule.trigger,
    cron: rule.cron ?? '',
    replicateDeletes: rule.replicateDeletes,
    override: rule.override,
    bandwidthKiB: rule.bandwidth ? String(Math.round(rule.bandwidth / 1024)) : '',
    concurrency: String(rule.concurrency),
    enabled: rule.enabled,
  };
}

function bodyOf(s: FormState, creating: boolean): ReplicationRuleInput {
  const types = s.artifactTypes
    .split(/[,\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);
  const destination = s.mode === 'keep' ? { mode: s.mode } : s.mode === 'replace' ? { mode: s.mode, namespace: s.namespace.trim() } : { mode: s.mode, levels: Number(s.levels), ...(s.namespace.trim() ? { namespace: s.namespace.trim() } : {}) };
  const body: ReplicationRuleInput = {
    registry: s.registry,
    direction: s.direction,
    filters: { repositories: selectorsOf(s.repositories), tags: selectorsOf(s.tags), ...(types.length ? { artifactTypes: types } : {}) },
    destination,
    trigger: s.trigger,
    replicateDeletes: s.trigger === 'event' && s.replicateDeletes,
    override: s.override,
    concurrency: Number(s.concurrency),
    enabled: s.enabled,
  };
  // A create leaves out what is unset; a change says it is gone (null).
  if (creating) {
    body.name = s.name.trim();
    if (s.description.trim()) body.description = s.description.trim();
    if (s.trigger === 'schedule') body.cron = s.cron.trim();
    if (s.bandwidthKiB.trim()) body.bandwidth = Math.round(Number(s.bandwidthKiB) * 1024);
  } else {
    body.description = s.description.trim() || null;
    body.cron = s.trigger === 'schedule' ? s.cron.trim() : null;
    body.bandwidth = s.bandwidthKiB.trim() ? Math.round(Number(s.bandwidthKiB) * 1024) : null;
  }
  return body;
}

type Field = keyof FormState;

/** Which form field an API field path belongs to, and the line of a pattern list it names. */
function fieldOf(path: string): { field: Field; line?: number } | undefined {
  const m = /^filters\.(repositories|tags|artifactTypes)(?:\.(\d+))?/.exec(path);
  if (m) return { field: m[1] as Field, ...(m[2] !== undefined ? { line: Number(m[2]) + 1 } : {}) };
  if (path === 'destination.namespace') return { field: 'namespace' };
  if (path === 'destination.levels') return { field: 'levels' };
  if (path.startsWith('destination')) return { field: 'mode' };
  const plain: Field[] = ['name', 'description', 'registry', 'direction', 'trigger', 'cron', 'replicateDeletes', 'override', 'concurrency', 'enabled'];
  if (path === 'bandwidth') return { field: 'bandwidthKiB' };
  return plain.includes(path as Field) ? { field: path as Field } : undefined;
}


/**
 * Creates a rule (`rule` undefined) or changes `rule` (its name stays). `onSaved` receives the rule
 * as the API answered it.
 */
export function ReplicationRuleForm({ open, rule, onClose, onSaved }: { open: boolean; rule?: ReplicationRule; onClose: () => void; onSaved: (rule: ReplicationRule) => void }) {
  const { t } = useI18n();
  const creating = rule === undefined;
  const [s, setS] = useState<FormState>(EMPTY);
  const action = useAction();
  const registries = useApi((signal) => (open ? api.get<Page<{ name: string; type: string; url: string }>>('/registries', { pageSize: 500 }, signal) : Promise.resolve(undefined)), [open]);

  useEffect(() => {
    if (!open) return;
    setS(rule ? stateOf(rule) : EMPTY);
    action.clear();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, rule]);
  // A new rule starts on the first endpoint.
  useEffect(() => {
    const first = registries.data?.items[0]?.name;
    if (open && creating && first && !s.registry) setS((x) => ({ ...x, registry: first }));
  }, [registries.data, open, creating, s.registry]);

  const set = <K extends Field>(key: K) => (value: FormState[K]) => setS((x) => ({ ...x, [key]: value }));

  const errors: Partial<Record<Field, string>> = {};
  const general: string[] = [];
  for (const [path, message] of Object.entries(fieldErrors(action.error))) {
    const where = fieldOf(path);
    if (!where) general.push(`${path}: ${message}`);
    else {
      const text = where.line ? t('replication.form.lineError', { line: where.line, message }) : message;
      errors[where.field] = errors[where.field] ? `${errors[where.field]}; ${text}` : text;
    }
  }
  const hasFields = Object.keys(errors).length > 0;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let saved: ReplicationRule | undefined;
    const ok = await action.run(async () => {
      const body = bodyOf(s, creating);
      saved = creating ? await api.post<ReplicationRule>('/replication/rules', body) : await api.patch<ReplicationRule>(`/replication/rules/${seg(rule.name)}`, body);
    });
    if (ok && saved) onSaved(saved);
  };

  const endpointOptions = (registries.data?.items ?? []).map((r) => ({ value: r.name, label: `${r.name} (${r.url})` }));
  if (s.registry && !endpointOptions.some((o) => o.value === s.registry)) endpointOptions.unshift({ value: s.registry, label: s.registry });
  const selectError = (field: Field) =>
    errors[field] && (
      <p className="field-error" role="alert">
        {errors[field]}
      </p>
    );

  return (
    <Dialog open={open} title={creating ? t('replication.form.createTitle') : t('replication.form.editTitle', { name: rule.name })} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {registries.data && registries.data.total === 0 && (
          <Notice kind="warning">
            {t('replication.form.noRegistries')} <Link to="/admin/registries">{t('replication.form.addRegistry')}</Link>
          </Notice>
        )}
        {creating && <TextField label={t('replication.form.name')} value={s.name} onChange={set('name')} required maxLength={64} hint={t('replication.form.nameHint')} error={errors.name} autoComplete="off" />}
        <TextField label={`${t('common.description')} ${t('common.optional')}`} value={s.description} onChange={set('description')} maxLength={1024} error={errors.description} />
        <fieldset>
          <legend>{t('replication.form.where')}</legend>
          <SelectField<Direction>
            label={t('replication.form.direction')}
            value={s.direction}
            onChange={set('direction')}
            options={[
              { value: 'push', label: t('replication.direction.push') },
              { value: 'pull', label: t('replication.direction.pull') },
            ]}
          />
          {selectError('direction')}
          <SelectField label={s.direction === 'push' ? t('replication.form.registryPush') : t('replication.form.registryPull')} value={s.registry} onChange={set('registry')} options={endpointOptions.length ? endpointOptions : [{ value: '', label: t('replication.form.noRegistryOption') }]} />
          {selectError('registry')}
        </fieldset>
        <fieldset>
          <legend>{t('replication.form.what')}</legend>
          <TextAreaField rows={3} maxLength={4000} spellCheck={false} label={t('replication.form.repositories')} value={s.repositories} onChange={set('repositories')} hint={t('replication.form.patternsHint')} error={errors.repositories} />
          <TextAreaField rows={3} maxLength={4000} spellCheck={false} label={t('replication.form.tags')} value={s.tags} onChange={set('tags')} hint={t('replication.form.patternsHint')} error={errors.tags} />
          <TextField label={`${t('replication.form.artifactTypes')} ${t('common.optional')}`} value={s.artifactTypes} onChange={set('artifactTypes')} hint={t('replication.form.artifactTypesHint')} error={errors.artifactTypes} maxLength={2000} />
        </fieldset>
        <fieldset>
          <legend>{t('replication.form.names')}</legend>
          <SelectField<DestinationMode>
            label={t('replication.form.mode')}
            value={s.mode}
            onChange={set('mode')}
            options={[
              { value: 'keep', label: t('replication.mode.keep') },
              { value: 'replace', label: t('replication.mode.replace') },
              { value: 'flatten', label: t('replication.mode.flatten') },
            ]}
          />
          {selectError('mode')}
          {s.mode !== 'keep' && <TextField label={s.mode === 'flatten' ? `${t('replication.form.namespace')} ${t('common.optional')}` : t('replication.form.namespace')} value={s.namespace} onChange={set('namespace')} maxLength={128} hint={t('replication.form.namespaceHint')} error={errors.namespace} />}
          {s.mode === 'flatten' && <TextField type="number" label={t('replication.form.levels')} value={s.levels} onChange={set('levels')} hint={t('replication.form.levelsHint')} error={errors.levels} />}
        </fieldset>
        <fieldset>
          <legend>{t('replication.form.when')}</legend>
          <SelectField<Trigger>
            label={t('replication.form.trigger')}
            value={s.trigger}
            onChange={set('trigger')}
            hint={t('replication.form.triggerHint')}
            options={[
              { value: 'manual', label: t('replication.trigger.manual') },
              { value: 'schedule', label: t('replication.trigger.schedule') },
              { value: 'event', label: t('replication.trigger.event') },
            ]}
          />
          {selectError('trigger')}
          {s.trigger === 'schedule' && <TextField label={t('replication.form.cron')} value={s.cron} onChange={set('cron')} maxLength={128} hint={t('replication.form.cronHint')} error={errors.cron} autoComplete="off" />}
          {s.trigger === 'event' && <CheckboxField label={t('replication.form.replicateDeletes')} checked={s.replicateDeletes} onChange={set('replicateDeletes')} hint={t('replication.form.replicateDeletesHint')} />}
          {selectError('replicateDeletes')}
          <CheckboxField label={t('replication.form.enabled')} checked={s.enabled} onChange={set('enabled')} hint={t('replication.form.enabledHint')} />
        </fieldset>
        <fieldset>
          <legend>{t('replication.form.how')}</legend>
          <CheckboxField label={t('replication.form.override')} checked={s.override} onChange={set('override')} hint={t('replication.form.overrideHint')} />
          <TextField type="number" label={t('replication.form.concurrency')} value={s.concurrency} onChange={set('concurrency')} hint={t('replication.form.concurrencyHint')} error={errors.concurrency} />
          <TextField type="number" label={`${t('replication.form.bandwidth')} ${t('common.optional')}`} value={s.bandwidthKiB} onChange={set('bandwidthKiB')} hint={t('replication.form.bandwidthHint')} error={errors.bandwidthKiB} />
        </fieldset>
        {action.error !== undefined && (hasFields ? <Notice kind="error">{[t('replication.form.fixErrors'), ...general].join(' ')}</Notice> : <Notice kind="error">{errorMessage(t, action.error)}</Notice>)}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={action.busy}>
            {creating ? t('common.create') : t('common.save')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
