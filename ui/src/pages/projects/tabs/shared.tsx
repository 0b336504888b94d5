// Small pieces the project tabs share: the registry's host for commands, state badges, a number field.
import { useId } from 'react';
import type { SystemInfo } from '../../../api/types';
import type { JobState } from '../../../api/project-tabs';
import { useI18n } from '../../../i18n/index';

/**
 * The host clients use in `docker login` / `docker pull`: the first external URL without its scheme
 * (and trailing slash), else the host this page was loaded from.
 */
export function registryHost(info: SystemInfo | null): string {
  const url = info?.externalURLs[0];
  if (url) {
    const host = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/+$/, '');
    if (host) return host;
  }
  return location.host;
}

/** A job's state as a badge whose words, not only its colour, say how it went. */
export function JobStateBadge({ state }: { state: JobState }) {
  const { t } = useI18n();
  const kind = state === 'succeeded' ? 'badge-ok' : state === 'failed' ? 'badge-bad' : state === 'cancelled' ? '' : 'badge-warn';
  return <span className={`badge ${kind}`}>{t(`retention.state.${state}`)}</span>;
}

/** A labelled whole-number input (TextField has no min/max). `value` is the text typed. */
export function NumberField({ label, value, onChange, min, max, hint, disabled }: { label: string; value: string; onChange: (value: string) => void; min?: number; max?: number; hint?: string; disabled?: boolean }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="number"
        inputMode="numeric"
        step={1}
        min={min}
        max={max}
        value={value}
        disabled={disabled}
        aria-describedby={hint ? `${id}-hint` : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint && (
        <p className="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** `text` as a whole number within [min, max], or undefined when it is not one. */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,9}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n >= min && n <= max ? n : undefined;
}
