import { useId, type ReactNode } from 'react';

/** What every field shows around its control: the label, then the hint and the error, tied to it for screen readers. */
interface FieldText {
  label: string;
  hint?: string;
  error?: string;
}

/**
 * The frame of a labelled control: `control` receives the id the label points at and the
 * aria-describedby naming the hint and the error.
 */
function FieldFrame({ label, hint, error, className = 'field', labelAfter, control }: FieldText & { className?: string; labelAfter?: boolean; control: (id: string, describedBy: string | undefined) => ReactNode }) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  const labelElement = <label htmlFor={id}>{label}</label>;
  return (
    <div className={className}>
      {!labelAfter && labelElement}
      {control(id, describedBy)}
      {labelAfter && labelElement}
      {hint && (
        <p className="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled text input (`type="number"` with `min`/`max` for whole numbers). */
export function TextField({
  label,
  value,
  onChange,
  type = 'text',
  hint,
  error,
  required,
  autoComplete,
  maxLength,
  placeholder,
  name,
  min,
  max,
  disabled,
}: FieldText & {
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'password' | 'url' | 'number' | 'email' | 'datetime-local' | 'search';
  required?: boolean;
  autoComplete?: string;
  maxLength?: number;
  placeholder?: string;
  name?: string;
  min?: number;
  max?: number;
  disabled?: boolean;
}) {
  return (
    <FieldFrame
      label={label}
      hint={hint}
      error={error}
      control={(id, describedBy) => (
        <input
          id={id}
          name={name}
          type={type}
          value={value}
          required={required}
          autoComplete={autoComplete}
          maxLength={maxLength}
          placeholder={placeholder}
          disabled={disabled}
          {...(type === 'number' ? { min, max, step: 1, inputMode: 'numeric' as const } : {})}
          aria-describedby={describedBy}
          aria-invalid={error ? true : undefined}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    />
  );
}

/** A labelled whole-number input; `value` is the text typed (see `wholeNumber` to read it). */
export function NumberField(props: Omit<Parameters<typeof TextField>[0], 'type'>) {
  return <TextField {...props} type="number" />;
}

/** A labelled multi-line text input. */
export function TextAreaField({ label, value, onChange, hint, error, maxLength, rows, spellCheck }: FieldText & { value: string; onChange: (value: string) => void; maxLength?: number; rows?: number; spellCheck?: boolean }) {
  return (
    <FieldFrame
      label={label}
      hint={hint}
      error={error}
      control={(id, describedBy) => (
        <textarea
          id={id}
          value={value}
          rows={rows}
          maxLength={maxLength}
          spellCheck={spellCheck}
          aria-describedby={describedBy}
          aria-invalid={error ? true : undefined}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    />
  );
}

/** A labelled select. */
export function SelectField<V extends string>({ label, value, onChange, options, hint }: FieldText & { value: V; onChange: (value: V) => void; options: { value: V; label: string }[] }) {
  return (
    <FieldFrame
      label={label}
      hint={hint}
      control={(id, describedBy) => (
        <select id={id} value={value} onChange={(e) => onChange(e.target.value as V)} aria-describedby={describedBy}>
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    />
  );
}

/** A labelled checkbox (the label after the box). */
export function CheckboxField({ label, checked, onChange, hint }: FieldText & { checked: boolean; onChange: (checked: boolean) => void }) {
  return (
    <FieldFrame
      label={label}
      hint={hint}
      className="field field-checkbox"
      labelAfter
      control={(id, describedBy) => <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} aria-describedby={describedBy} />}
    />
  );
}

/** `text` as a whole number within [min, max], or undefined when it is not one. */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,9}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n >= min && n <= max ? n : undefined;
}
