import { describe, expect, it } from 'vitest';
import {
  TIERS, TIER_INFO, clientConfig, consentRequestId, daysText, defaultExpiry, defaultTier, expiryChoices, grantState,
  kindText,
} from './agentAccess';

describe('the consent page URL', () => {
  it('names an authorization request, or nothing usable', () => {
    expect(consentRequestId('?request=oar_abcdefghijklmnop0123')).toBe('oar_abcdefghijklmnop0123');
    expect(consentRequestId('?request=oar_short')).toBeNull();
    expect(consentRequestId('?request=../../api/agent-tokens')).toBeNull();
    expect(consentRequestId('')).toBeNull();
  });
});

describe('the tier picked at first', () => {
  it('is the highest asked for, but never critical unless picked on purpose', () => {
    expect(defaultTier(['public'])).toBe('public');
    expect(defaultTier(['public', 'authenticated'])).toBe('authenticated');
    expect(defaultTier(['public', 'authenticated', 'sensitive'])).toBe('sensitive');
    expect(defaultTier(TIERS)).toBe('sensitive');
    expect(defaultTier([])).toBe('public');
  });

  it('each tier says what it reaches', () => {
    for (const tier of TIERS) expect(TIER_INFO[tier].reach.length).toBeGreaterThan(10);
    expect(TIER_INFO.critical.reach).toMatch(/confirm/);
  });
});

describe('lifetimes', () => {
  it('are offered up to the server longest', () => {
    expect(expiryChoices(90)).toEqual([1, 7, 30, 90]);
    expect(expiryChoices(45)).toEqual([1, 7, 30, 45]);
    expect(expiryChoices(1)).toEqual([1]);
    expect(expiryChoices(366)).toEqual([1, 7, 30, 90, 180, 366]);
    expect(defaultExpiry(90)).toBe(30);
    expect(defaultExpiry(7)).toBe(7);
    expect(daysText(1)).toBe('1 day');
    expect(daysText(30)).toBe('30 days');
  });
});

describe('a grant', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it('is active until it expires or is revoked (server times without a zone are UTC)', () => {
    expect(grantState({ revoked_at: null, expires_at: '2026-03-02T12:00:00' }, now)).toBe('active');
    expect(grantState({ revoked_at: null, expires_at: '2026-03-01T11:59:59Z' }, now)).toBe('expired');
    expect(grantState({ revoked_at: '2026-02-28T10:00:00', expires_at: '2026-03-02T12:00:00' }, now)).toBe('revoked');
    expect(kindText('oauth')).toBe('OAuth app');
    expect(kindText('agent_token')).toBe('Agent token');
  });

  it('comes with a client configuration naming the server and the token', () => {
    const config = JSON.parse(clientConfig('http://127.0.0.1:8090/mcp', 'tok'));
    expect(config.mcpServers.durabot).toEqual({ type: 'http', url: 'http://127.0.0.1:8090/mcp', headers: { Authorization: 'Bearer tok' } });
  });
});
