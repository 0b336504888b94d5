import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { en } from './en/index';

/** Every message key; `t` accepts nothing else, so a typo or a missing string fails the type check. */
export type MessageKey = keyof typeof en;
/** A complete catalogue: every key, translated. */
export type Catalogue = Record<MessageKey, string>;
export type Locale = 'en' | 'zh-CN';
export const LOCALES: { id: Locale; label: string }[] = [
  { id: 'en', label: 'English' },
  { id: 'zh-CN', label: '简体中文' },
];

/** Only English is in the first page's JavaScript; other catalogues load when chosen. */
const loaders: Record<Locale, () => Promise<Catalogue>> = {
  en: async () => en,
  'zh-CN': async () => (await import('./zh-CN/index')).catalogue,
};

const STORAGE_KEY = 'berth.locale';

function initialLocale(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'zh-CN') return saved;
  } catch {
    // Storage may be unavailable (private mode): fall back to the browser's language.
  }
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

export interface I18n {
  locale: Locale;
  setLocale: (locale: Locale) => void;
  t: Translate;
  /** A date and time in the user's locale (`—` for null). */
  dateTime: (iso: string | null | undefined) => string;
  /** A byte count in binary units, with the locale's digits. */
  bytes: (n: number | null | undefined) => string;
  /** A number in the locale's format. */
  number: (n: number) => string;
}

const I18nContext = createContext<I18n | null>(null);

function fill(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Provides the chosen catalogue and formatters; renders nothing until the catalogue is loaded. */
export function I18nProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>(initialLocale);
  const [catalogue, setCatalogue] = useState<{ locale: Locale; messages: Catalogue } | null>(null);

  useEffect(() => {
    let live = true;
    void loaders[locale]().then((messages) => live && setCatalogue({ locale, messages }));
    document.documentElement.lang = locale;
    return () => void (live = false);
  }, [locale]);

  const setLocale = useCallback((next: Locale) => {
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // Not remembered across visits; the switch still applies.
    }
    setLocaleState(next);
  }, []);

  const value = useMemo<I18n | null>(() => {
    if (!catalogue) return null;
    const tag = catalogue.locale;
    const dtf = new Intl.DateTimeFormat(tag, { dateStyle: 'medium', timeStyle: 'short' });
    const nf = new Intl.NumberFormat(tag);
    const nf1 = new Intl.NumberFormat(tag, { maximumFractionDigits: 1 });
    return {
      locale: tag,
      setLocale,
      t: (key, vars) => fill(catalogue.messages[key] ?? en[key] ?? key, vars),
      dateTime: (iso) => (iso ? dtf.format(new Date(iso)) : '—'),
      number: (n) => nf.format(n),
      bytes: (n) => {
        if (n === null || n === undefined) return '—';
        let value = n;
        let unit = 0;
        while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
          value /= 1024;
          unit++;
        }
        return `${unit === 0 ? nf.format(value) : nf1.format(value)} ${UNITS[unit]}`;
      },
    };
  }, [catalogue, setLocale]);

  if (!value) return null;
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

/** The current locale, `t` and the formatters. */
export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error('useI18n outside I18nProvider');
  return value;
}
