import { SelectField, TextField } from '../../components/Field';
import { UsageBar } from '../../components/Progress';
import { useI18n } from '../../i18n/index';

/** A quota as typed: an amount (empty: unlimited) and its unit. */
export interface QuotaInput {
  amount: string;
  unit: 'GiB' | 'MiB';
}

const UNIT_BYTES = { GiB: 1024 ** 3, MiB: 1024 ** 2 } as const;

/** The form's value for a quota in bytes (null: unlimited): whole GiB when it is some, else MiB. */
export function quotaInput(bytes: number | null): QuotaInput {
  if (bytes === null) return { amount: '', unit: 'GiB' };
  if (bytes % UNIT_BYTES.GiB === 0) return { amount: String(bytes / UNIT_BYTES.GiB), unit: 'GiB' };
  return { amount: String(Math.round((bytes / UNIT_BYTES.MiB) * 100) / 100), unit: 'MiB' };
}

/** Bytes for a typed quota: null for empty (unlimited), undefined when it is not a number ≥ 0. */
export function quotaBytes(input: QuotaInput): number | null | undefined {
  const text = input.amount.trim();
  if (text === '') return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) return undefined;
  const bytes = Math.round(value * UNIT_BYTES[input.unit]);
  return bytes <= Number.MAX_SAFE_INTEGER ? bytes : undefined;
}

/** The quota amount and unit side by side; an empty amount means no limit. */
export function QuotaField({ value, onChange, error }: { value: QuotaInput; onChange: (value: QuotaInput) => void; error?: string }) {
  const { t } = useI18n();
  return (
    <div className="projects-quota">
      <TextField
        label={t('projects.quota.amount')}
        type="number"
        value={value.amount}
        onChange={(amount) => onChange({ ...value, amount })}
        hint={t('projects.quota.hint')}
        error={error}
      />
      <SelectField
        label={t('projects.quota.unit')}
        value={value.unit}
        onChange={(unit) => onChange({ ...value, unit })}
        options={[
          { value: 'GiB', label: t('projects.quota.gib') },
          { value: 'MiB', label: t('projects.quota.mib') },
        ]}
      />
    </div>
  );
}

/** "1.2 GiB of 10 GiB" (or "1.2 GiB, no limit") beside a bar when there is a quota. */
export function QuotaUsage({ used, limit }: { used: number; limit: number | null }) {
  const { t, bytes } = useI18n();
  return (
    <div className="projects-usage">
      <UsageBar label={t('projects.usage.label')} used={used} limit={limit} />
      <span>{limit === null ? t('projects.usage.unlimited', { used: bytes(used) }) : t('projects.usage.of', { used: bytes(used), limit: bytes(limit) })}</span>
    </div>
  );
}
