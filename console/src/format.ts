/** Display helpers. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0');
  return `${h ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

/** A t (ms since the stream's start) as m:ss.d */
export function offset(t: number): string {
  const sign = t < 0 ? '-' : '';
  const a = Math.abs(t);
  const m = Math.floor(a / 60000);
  const sec = (a % 60000) / 1000;
  return `${sign}${m}:${sec.toFixed(1).padStart(4, '0')}`;
}

/** Caller audio the agent never received: 'none', seconds with a tenth ('0.3 s'), or '—' when not known. */
export function lostAudio(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms === 0) return 'none';
  return `${Math.max(0.1, Math.round(ms / 100) / 10).toFixed(1)} s`;
}

/** Shows `ms` of lost caller audio in `el`, marked (class `lost`) when there is any. */
export function showLostAudio(el: HTMLElement, ms: number | null | undefined): void {
  el.textContent = lostAudio(ms);
  el.classList.toggle('lost', typeof ms === 'number' && ms > 0);
  el.title = typeof ms === 'number' && ms > 0 ? `${Math.round(ms)} ms of what the caller said never reached the agent` : '';
}

export const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '—' : String(v));

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function json(v: unknown): string {
  if (v === undefined) return '';
  try {
    return JSON.stringify(v, null, 2) ?? String(v);
  } catch {
    return String(v);
  }
}

/** dBFS (-90..0) → a meter value 0..90; null → 0 */
export function meterValue(db: number | null | undefined): number {
  if (db === null || db === undefined || !Number.isFinite(db)) return 0;
  return Math.max(0, Math.min(90, db + 90));
}

export function dbLabel(db: number | null | undefined): string {
  return db === null || db === undefined || !Number.isFinite(db) ? 'no audio' : `${Math.round(db)} dBFS`;
}
