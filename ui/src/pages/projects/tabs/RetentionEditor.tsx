import { useState, type FormEvent } from 'react';
import { api, seg } from '../../../api/client';
import { MAX_RETENTION_RULES, RETAIN_KINDS, type RetainKind, type RetentionPolicy, type RetentionRule } from '../../../api/project-tabs';
import { CheckboxField, SelectField, TextField, wholeNumber } from '../../../components/Field';
import { useAction } from '../../../components/hooks';
import { Notice, errorMessage } from '../../../components/states';
import { useI18n } from '../../../i18n/index';
import { NumberField } from '../../../components/Field';

/** A rule as the form holds it: numbers as typed. */
interface Draft {
  repoPattern: string;
  repoExclude: boolean;
  tagPattern: string;
  tagExclude: boolean;
  untagged: boolean;
  kind: RetainKind;
  amount: string;
}

const MAX_COUNT = 32_766;
const MAX_DAYS = 36_500;

function toDraft(rule: RetentionRule): Draft {
  const r = rule.retain;
  return {
    repoPattern: rule.repositories.pattern,
    repoExclude: rule.repositories.exclude,
    tagPattern: rule.tags.pattern,
    tagExclude: rule.tags.exclude,
    untagged: rule.untagged,
    kind: r.kind,
    amount: 'count' in r ? String(r.count) : 'days' in r ? String(r.days) : '10',
  };
}

const blank = (): Draft => ({ repoPattern: '**', repoExclude: false, tagPattern: '**', tagExclude: false, untagged: false, kind: 'latestPushed', amount: '10' });

const isCount = (kind: RetainKind) => kind === 'latestPushed' || kind === 'latestPulled';

/** The rule a draft stands for, or undefined when its number is out of range. */
function toRule(d: Draft): RetentionRule | undefined {
  const selectors = { repositories: { pattern: d.repoPattern.trim(), exclude: d.repoExclude }, tags: { pattern: d.tagPattern.trim(), exclude: d.tagExclude }, untagged: d.untagged };
  if (d.kind === 'always') return { ...selectors, retain: { kind: 'always' } };
  if (isCount(d.kind)) {
    const count = wholeNumber(d.amount, 1, MAX_COUNT);
    return count === undefined ? undefined : { ...selectors, retain: { kind: d.kind as 'latestPushed' | 'latestPulled', count } };
  }
  const days = wholeNumber(d.amount, 1, MAX_DAYS);
  return days === undefined ? undefined : { ...selectors, retain: { kind: d.kind as 'pushedWithinDays' | 'pulledWithinDays', days } };
}

/** The policy editor: up to 15 rules (patterns, what to keep) and an optional cron schedule; saved with PUT. */
export function RetentionEditor({ project, initial, onCancel, onSaved }: { project: string; initial: RetentionPolicy | null; onCancel: () => void; onSaved: () => void }) {
  const { t } = useI18n();
  const [drafts, setDrafts] = useState<Draft[]>(() => (initial && initial.rules.length > 0 ? initial.rules.map(toDraft) : [blank()]));
  const [scheduled, setScheduled] = useState(Boolean(initial?.cron));
  const [cron, setCron] = useState(initial?.cron ?? '0 3 * * *');
  const [tried, setTried] = useState(false);
  const save = useAction();

  const update = (i: number, change: Partial<Draft>) => setDrafts((all) => all.map((d, j) => (j === i ? { ...d, ...change } : d)));
  const matchOptions = [
    { value: 'match', label: t('retention.form.matching') },
    { value: 'exclude', label: t('retention.form.notMatching') },
  ] as const;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setTried(true);
    const rules = drafts.map(toRule);
    if (rules.some((r) => r === undefined || !r.repositories.pattern || !r.tags.pattern)) return;
    if (scheduled && !cron.trim()) return;
    const ok = await save.run(() => api.put(`/projects/${seg(project)}/retention`, { rules, cron: scheduled ? cron.trim() : null }));
    if (ok) onSaved();
  };

  return (
    <form className="card pt-form" onSubmit={submit} noValidate aria-labelledby="pt-retention-edit-h">
      <h3 id="pt-retention-edit-h">{t('retention.form.title')}</h3>
      <p className="muted">{t('retention.form.intro')}</p>
      {drafts.map((d, i) => {
        const rule = toRule(d);
        return (
          <fieldset key={i} className="pt-rule">
            <legend>{t('retention.form.rule', { n: i + 1 })}</legend>
            <div className="pt-row">
              <SelectField
                label={t('retention.form.repositories', { n: i + 1 })}
                value={d.repoExclude ? 'exclude' : 'match'}
                onChange={(v) => update(i, { repoExclude: v === 'exclude' })}
                options={[...matchOptions]}
              />
              <TextField
                label={t('retention.form.repoPattern', { n: i + 1 })}
                value={d.repoPattern}
                onChange={(v) => update(i, { repoPattern: v })}
                maxLength={256}
                error={tried && !d.repoPattern.trim() ? t('common.required') : undefined}
              />
            </div>
            <div className="pt-row">
              <SelectField label={t('retention.form.tags', { n: i + 1 })} value={d.tagExclude ? 'exclude' : 'match'} onChange={(v) => update(i, { tagExclude: v === 'exclude' })} options={[...matchOptions]} />
              <TextField
                label={t('retention.form.tagPattern', { n: i + 1 })}
                value={d.tagPattern}
                onChange={(v) => update(i, { tagPattern: v })}
                maxLength={256}
                error={tried && !d.tagPattern.trim() ? t('common.required') : undefined}
              />
            </div>
            <CheckboxField label={t('retention.form.untagged', { n: i + 1 })} checked={d.untagged} onChange={(v) => update(i, { untagged: v })} />
            <div className="pt-row">
              <SelectField<RetainKind> label={t('retention.form.retain', { n: i + 1 })} value={d.kind} onChange={(v) => update(i, { kind: v })} options={RETAIN_KINDS.map((k) => ({ value: k, label: t(`retention.kind.${k}`) }))} />
              {d.kind !== 'always' && (
                <NumberField
                  label={isCount(d.kind) ? t('retention.form.count', { n: i + 1 }) : t('retention.form.days', { n: i + 1 })}
                  value={d.amount}
                  onChange={(v) => update(i, { amount: v })}
                  min={1}
                  max={isCount(d.kind) ? MAX_COUNT : MAX_DAYS}
                  hint={tried && rule === undefined ? t('retention.form.amountRule', { max: isCount(d.kind) ? MAX_COUNT : MAX_DAYS }) : undefined}
                />
              )}
            </div>
            <button type="button" onClick={() => setDrafts((all) => all.filter((_, j) => j !== i))} aria-label={t('retention.form.removeRuleLabel', { n: i + 1 })}>
              {t('retention.form.removeRule')}
            </button>
          </fieldset>
        );
      })}
      <p>
        <button type="button" disabled={drafts.length >= MAX_RETENTION_RULES} onClick={() => setDrafts((all) => [...all, blank()])}>
          {t('retention.form.addRule')}
        </button>{' '}
        <span className="muted">{t('retention.form.ruleCount', { n: drafts.length, max: MAX_RETENTION_RULES })}</span>
      </p>
      <p className="field-hint">{t('retention.form.patternHint')}</p>
      <CheckboxField label={t('retention.form.scheduled')} checked={scheduled} onChange={setScheduled} />
      {scheduled && <TextField label={t('retention.form.cron')} value={cron} onChange={setCron} maxLength={128} hint={t('retention.form.cronHint')} error={tried && !cron.trim() ? t('common.required') : undefined} />}
      {/* The API's message names the field at fault (rules.2.tags.pattern: …). */}
      {save.error !== undefined && <Notice kind="error">{errorMessage(t, save.error)}</Notice>}
      <div className="toolbar">
        <button type="submit" className="primary" disabled={save.busy}>
          {t('retention.form.save')}
        </button>
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
      </div>
    </form>
  );
}
