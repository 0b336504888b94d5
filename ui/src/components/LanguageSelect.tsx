import { LOCALES, useI18n, type Locale } from '../i18n/index';

/** The language switch; `label` is read by screen readers only (the options name themselves). */
export function LanguageSelect({ label }: { label: string }) {
  const { locale, setLocale } = useI18n();
  return (
    <label className="language">
      <span className="visually-hidden">{label}</span>
      <select value={locale} onChange={(e) => setLocale(e.target.value as Locale)}>
        {LOCALES.map((l) => (
          <option key={l.id} value={l.id} lang={l.id}>
            {l.label}
          </option>
        ))}
      </select>
    </label>
  );
}
