import type { JobState } from '../api/types';
import { useI18n } from '../i18n/index';

const STATE_CLASS: Record<JobState, string> = {
  queued: 'badge',
  running: 'badge badge-warn',
  succeeded: 'badge badge-ok',
  failed: 'badge badge-bad',
  cancelled: 'badge',
};

/** A job's state in words (never by colour alone), with "cancelling" while a cancel is pending. */
export function StateBadge({ state, cancelRequested }: { state: JobState; cancelRequested?: boolean }) {
  const { t } = useI18n();
  const pending = cancelRequested && (state === 'queued' || state === 'running');
  return <span className={STATE_CLASS[state] ?? 'badge'}>{pending ? t('jobState.cancelling') : t(`jobState.${state}`)}</span>;
}
