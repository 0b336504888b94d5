/** A labelled progress bar; without `max` it shows activity of unknown length. */
export function Progress({ label, value, max }: { label: string; value?: number; max?: number }) {
  return (
    <div className="progress">
      <span>{label}</span>
      {max !== undefined && max > 0 && value !== undefined ? <progress value={Math.min(value, max)} max={max} aria-label={label} /> : <progress aria-label={label} />}
    </div>
  );
}

/** A usage bar (quota): `used` of `limit`, null limit: no bar. Turns amber at 80 %, red at 100 %. */
export function UsageBar({ label, used, limit }: { label: string; used: number; limit: number | null }) {
  if (limit === null || limit <= 0) return null;
  const ratio = used / limit;
  return <meter className={ratio >= 1 ? 'full' : ratio >= 0.8 ? 'high' : ''} min={0} max={limit} low={limit * 0.8} high={limit * 0.99} optimum={0} value={Math.min(used, limit)} aria-label={label} />;
}
