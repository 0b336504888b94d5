// What the operations pages (replication, executions, garbage collection, jobs) share: durations
// in the reader's language, a log, and the live clock for elapsed time.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import type { LogLine } from '../../api/operations';
import { useI18n } from '../../i18n/index';

/**
 * Formats a number of seconds as hours, minutes and seconds in the locale's units ("1 h 5 min",
 * "1小时5分钟"); under a minute shows seconds.
 */
export function useDuration(): (seconds: number | null | undefined) => string {
  const { locale } = useI18n();
  return useMemo(() => {
    const unit = (u: 'hour' | 'minute' | 'second') => new Intl.NumberFormat(locale, { style: 'unit', unit: u, unitDisplay: 'short' });
    const h = unit('hour');
    const m = unit('minute');
    const s = unit('second');
    const sep = locale === 'zh-CN' ? '' : ' ';
    return (seconds) => {
      if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
      const total = Math.round(seconds);
      const hours = Math.floor(total / 3600);
      const minutes = Math.floor((total % 3600) / 60);
      const secs = total % 60;
      if (hours > 0) return [h.format(hours), minutes ? m.format(minutes) : ''].filter(Boolean).join(sep);
      if (minutes > 0) return [m.format(minutes), secs ? s.format(secs) : ''].filter(Boolean).join(sep);
      return s.format(secs);
    };
  }, [locale]);
}

/** Seconds between two times; `finishedAt` null: until `now` (a run still going). */
export function elapsedSeconds(startedAt: string | null, finishedAt: string | null, now: number): number | null {
  if (!startedAt) return null;
  const end = finishedAt ? Date.parse(finishedAt) : now;
  const start = Date.parse(startedAt);
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : null;
}

/** The current time, ticking every second while `live` (elapsed time of a running job). */
export function useNow(live: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [live]);
  return now;
}

const LEVEL_CLASS: Record<string, string> = { error: 'badge badge-bad', warn: 'badge badge-warn' };

/** A job's log, oldest line first, in a scrollable region (keyboard-reachable). */
export function LogView({ lines, label }: { lines: LogLine[]; label: string }) {
  const { t, locale } = useI18n();
  // Log lines are seconds apart: the time with seconds, the date only in the title.
  const time = useMemo(() => new Intl.DateTimeFormat(locale, { timeStyle: 'medium' }), [locale]);
  const full = useMemo(() => new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' }), [locale]);
  // A reader at the end of the log keeps following new lines; one who scrolled up stays put.
  const box = useRef<HTMLDivElement>(null);
  const atEnd = useRef(true);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && atEnd.current) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  if (lines.length === 0) return <p className="muted">{t('jobs.log.empty')}</p>;
  return (
    <div
      className="ops-log"
      role="region"
      aria-label={label}
      tabIndex={0}
      ref={box}
      onScroll={(e) => (atEnd.current = e.currentTarget.scrollHeight - e.currentTarget.scrollTop - e.currentTarget.clientHeight < 24)}
    >
      <ol>
        {lines.map((line, i) => (
          <li key={i}>
            <time dateTime={line.time} title={full.format(new Date(line.time))} className="muted">
              {time.format(new Date(line.time))}
            </time>{' '}
            <span className={LEVEL_CLASS[line.level] ?? 'badge'}>{t(line.level === 'error' ? 'jobs.log.error' : line.level === 'warn' ? 'jobs.log.warn' : 'jobs.log.info')}</span>{' '}
            <span className="mono">{line.message}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}
