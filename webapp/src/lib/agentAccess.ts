// Agent access (MCP): the words and choices of the settings card and the OAuth consent page — what each
// tier lets an agent do, the lifetimes offered, which tier is picked at first, a grant's state.
import type { Schemas } from '../api/client';
import { parseServerTime } from './twoFactor';

export type Tier = Schemas['GrantOut']['tier'];
export type Grant = Schemas['GrantOut'];

export const TIERS: readonly Tier[] = ['public', 'authenticated', 'sensitive', 'critical'];

export const TIER_INFO: Record<Tier, { title: string; reach: string }> = {
  public: { title: 'Public', reach: 'market data, health and system information' },
  authenticated: { title: 'Authenticated', reach: 'also reads your account: portfolio, trades, settings, backtests' },
  sensitive: { title: 'Sensitive', reach: 'also paper trading, backtests and GREEN tuning changes' },
  critical: {
    title: 'Critical',
    reach: 'also asks for real orders and YELLOW/RED tuning — each one waits for you to confirm it here or in Telegram',
  },
};

export const CONSENT_PATH = '/oauth/consent';
const REQUEST_ID = /^oar_[A-Za-z0-9_-]{16,64}$/;

/** The authorization request named by the consent page's URL (`?request=oar_…`), or null. */
export function consentRequestId(search: string): string | null {
  const id = new URLSearchParams(search).get('request');
  return id && REQUEST_ID.test(id) ? id : null;
}

/** The lifetimes offered, in days, up to the server's longest. */
export function expiryChoices(maxDays: number): number[] {
  const choices = [1, 7, 30, 90, 180, 366].filter((d) => d <= maxDays);
  return choices.includes(maxDays) || maxDays < 1 ? choices : [...choices, maxDays];
}

export function defaultExpiry(maxDays: number): number {
  return Math.min(30, Math.max(1, maxDays));
}

/** The tier picked at first: the highest offered, except that critical is never preselected (the person
 * picks it on purpose). */
export function defaultTier(offered: readonly Tier[]): Tier {
  const highest = offered[offered.length - 1] ?? 'public';
  return highest === 'critical' && offered.includes('sensitive') ? 'sensitive' : highest;
}

export function daysText(days: number): string {
  return days === 1 ? '1 day' : `${days} days`;
}

export type GrantState = 'active' | 'revoked' | 'expired';

export function grantState(grant: Pick<Grant, 'revoked_at' | 'expires_at'>, nowMs: number): GrantState {
  if (grant.revoked_at) return 'revoked';
  return (parseServerTime(grant.expires_at) ?? 0) > nowMs ? 'active' : 'expired';
}

export function kindText(kind: Grant['kind']): string {
  return kind === 'oauth' ? 'OAuth app' : 'Agent token';
}

/** A client configuration naming the MCP server and the token (most MCP clients read this shape). */
export function clientConfig(mcpUrl: string, token: string): string {
  return JSON.stringify({ mcpServers: { durabot: { type: 'http', url: mcpUrl, headers: { Authorization: `Bearer ${token}` } } } }, null, 2);
}
