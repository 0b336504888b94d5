import { useState } from 'react';
import { useI18n } from '../i18n/index';

/** Copies `text`; says so for a moment (announced to screen readers). `what` names it: "Copy {what}". */
export function CopyButton({ text, what }: { text: string; what: string }) {
  const { t } = useI18n();
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard API unavailable (plain http on another host): select-and-copy fallback.
      const area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'visually-hidden';
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" className="copy" onClick={() => void copy()} aria-label={t('common.copyLabel', { what })}>
      <span aria-live="polite">{copied ? t('common.copied') : t('common.copy')}</span>
    </button>
  );
}

/** A value shown in monospace with a copy button beside it (digests, pull commands, secrets). */
export function Copyable({ text, what }: { text: string; what: string }) {
  return (
    <span className="copyable">
      <code>{text}</code>
      <CopyButton text={text} what={what} />
    </span>
  );
}
