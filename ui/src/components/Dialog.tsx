import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useI18n } from '../i18n/index';
import { TextField } from './Field';
import { errorMessage } from './states';

/**
 * A modal dialog on the browser's own <dialog>: focus moves in and is kept there, Escape closes
 * it, focus returns to what opened it.
 */
export function Dialog({ open, title, onClose, children }: { open: boolean; title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      {open && (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
        </>
      )}
    </dialog>
  );
}

/**
 * Asks before an action that cannot be undone. `confirmWord` (e.g. the project's name) must be
 * typed for the worst ones. The action's error is shown in the dialog; it closes on success.
 */
export function ConfirmDialog({
  open,
  title,
  message,
  confirmLabel,
  confirmWord,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  message: ReactNode;
  confirmLabel: string;
  confirmWord?: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (open) {
      setTyped('');
      setError(undefined);
    }
  }, [open]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title={title} onClose={onClose}>
      <form onSubmit={submit}>
        <div className="dialog-body">{message}</div>
        {confirmWord && (
          <TextField label={t('confirm.typeToConfirm', { word: confirmWord })} value={typed} onChange={setTyped} autoComplete="off" />
        )}
        {error !== undefined && (
          <p className="field-error" role="alert">
            {errorMessage(t, error)}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="danger" disabled={busy || (confirmWord !== undefined && typed !== confirmWord)}>
            {confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
