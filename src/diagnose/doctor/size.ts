// Byte sizes as people type and read them (`4MiB`, `110MB`, `512k`).

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

/** Parses `4MiB`, `110MB`, `512k`, `1048576`; SI suffixes are powers of 1000, IEC and bare letters of 1024. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`not a size: "${text}" (examples: 4MiB, 110MB, 512k)`);
  return Math.round(Number(match[1]) * unit);
}

/** 1048577 → `1MiB+1`, 524288 → `512KiB`, 1500 → `1500B`: exact, so limits read unambiguously. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size) {
      const whole = Math.floor(bytes / size);
      const rest = bytes - whole * size;
      if (rest === 0) return `${whole}${unit}`;
      if (rest < 1024) return `${whole}${unit}+${rest}`;
    }
  }
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)}MiB`;
  return `${bytes}B`;
}

/**
 * The PATCH body sizes to try: just above the common limits (nginx's 1 MiB default, CDN 100 MB
 * caps), growing, capped at `max` (which is always tried last).
 */
export function probeSizes(max: number): number[] {
  const ladder = [512 * 1024, 1024 ** 2 + 1, 2 * 1024 ** 2 + 1, 8 * 1024 ** 2 + 1, 32 * 1024 ** 2 + 1, 64 * 1024 ** 2 + 1, 100 * 1000 ** 2 + 1, 100 * 1024 ** 2 + 1];
  const sizes = ladder.filter((s) => s < max);
  sizes.push(max);
  return sizes;
}
