// What the Tuning page computes without the API: countdowns on the server's clock, the values of a change
// as text, the rows of an audit entry, a parameter's bounds, and when a typed approval may be sent.

export type Tier = 'NONE' | 'GREEN' | 'YELLOW' | 'RED';

/** A proposal's change as the API gives it (the audit trail's carry no label). */
export interface ChangeLike {
  path: string;
  label?: string;
  current: unknown;
  proposed: unknown;
}

/** How far the browser's clock is behind the server's (expiries and cooldowns are server times). 0 when the
 * server gave no time (no tuning yet). */
export function clockOffset(serverNowMs: number | null | undefined, browserNowMs: number): number {
  return serverNowMs && Number.isFinite(serverNowMs) ? serverNowMs - browserNowMs : 0;
}

/** Time left until ``untilMs`` as "5h 59m 58s", "2m 05s", "9s"; "expired" once it has passed. */
export function countdownText(untilMs: number | null | undefined, nowMs: number): string {
  if (untilMs == null || !Number.isFinite(untilMs)) return '—';
  const left = Math.ceil((untilMs - nowMs) / 1000);
  if (left <= 0) return 'expired';
  const days = Math.floor(left / 86_400);
  const hours = Math.floor((left % 86_400) / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = String(left % 60).padStart(2, '0');
  if (days) return `${days}d ${hours}h ${String(minutes).padStart(2, '0')}m`;
  if (hours) return `${hours}h ${String(minutes).padStart(2, '0')}m ${seconds}s`;
  if (minutes) return `${minutes}m ${seconds}s`;
  return `${left % 60}s`;
}

/** A cooldown or expiry length: "6 h", "90 min", "45 s". */
export function spanText(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** A setting's value as a person reads it: null is a stop or limit switched off. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'off';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** "Take profit: 6 → 3" (the label when known, else the path). */
export function changeText(change: ChangeLike, labels: Readonly<Record<string, string>> = {}): string {
  const name = change.label || labels[change.path] || change.path;
  return `${name}: ${valueText(change.current)} → ${valueText(change.proposed)}`;
}

/** RED proposals: Approve is enabled only when the typed text is the approval text exactly (no trimming:
 * the server compares exactly, and a near miss should not look accepted). */
export function approvalTextMatches(typed: string, expected: string | null | undefined): boolean {
  return !!expected && typed === expected;
}

/** An audit time as ms: the API writes UTC, with or without a zone. */
export function auditTime(at: unknown): number | null {
  if (typeof at === 'number') return Number.isFinite(at) ? at : null;
  if (typeof at !== 'string' || !at) return null;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(at) ? at : `${at}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? ms : null;
}

export interface AuditRow {
  at: number | null;
  action: string;
  tier: string;
  changes: ChangeLike[];
  who: string;
  proposer: string;
  reason: string;
}

/** One audit entry ({at, action: "tuning_applied", actor_id, details}) as a row of the history table. */
export function auditRow(entry: { at: unknown; action: string; actor_id?: string | null; details: Record<string, unknown> }): AuditRow {
  const d = entry.details ?? {};
  const changes = Array.isArray(d.changes)
    ? (d.changes as Record<string, unknown>[]).filter((c) => c && typeof c.path === 'string')
      .map((c) => ({ path: String(c.path), current: c.current, proposed: c.proposed }))
    : [];
  const proposer = (d.proposer ?? {}) as { kind?: string; name?: string };
  return {
    at: auditTime(entry.at),
    action: entry.action.replace(/^tuning_/, ''),
    tier: typeof d.tier === 'string' ? d.tier : '',
    changes,
    who: entry.actor_id ?? '—',
    proposer: proposer.name ? `${proposer.kind ?? ''} ${proposer.name}`.trim() : '',
    reason: typeof d.reason === 'string' ? d.reason : '',
  };
}

/** "0.2 – 50 %" */
export function rangeText(minimum: number, maximum: number, unit: string): string {
  const suffix = unit ? (unit === '%' || unit === 'x' ? unit : ` ${unit}`) : '';
  return `${valueText(minimum)} – ${valueText(maximum)}${suffix}`;
}

/** The largest change one adjustment may make: a step ("5") or, for sizes, a factor ("×2"). */
export function largestChangeText(maxChange: number | null | undefined, maxFactor: number | null | undefined): string {
  if (maxFactor != null) return `×${valueText(maxFactor)}`;
  return maxChange != null ? valueText(maxChange) : '—';
}

/** What a proposal's outcome says to the person who made it. */
export function outcomeText(p: { number: number; status: string; tier: string; applied_version?: number | null; failure?: string | null }): string {
  switch (p.status) {
    case 'APPLIED':
      return `Proposal #${p.number} (${p.tier}) applied${p.applied_version != null ? `: settings version ${p.applied_version}` : ''}.`;
    case 'AWAITING':
      return `Proposal #${p.number} (${p.tier}) awaits your approval in the queue.`;
    case 'FAILED':
      return `Proposal #${p.number} failed${p.failure ? `: ${p.failure}` : ''}.`;
    default:
      return `Proposal #${p.number} is ${p.status.toLowerCase()}.`;
  }
}
