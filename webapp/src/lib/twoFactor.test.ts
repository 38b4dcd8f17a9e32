import { describe, expect, it } from 'vitest';
import {
  asSentence, clockText, codeProblem, groupedSecret, isLoginChallenge, normaliseCode, parseServerTime, recoveryCodesText,
  retryAfterText, stepUpNeed, stepUpText,
} from './twoFactor';

describe('step-up refusals', () => {
  it('are 403s that name a need', () => {
    expect(stepUpNeed(403, { detail: 'x', step_up: 'code' })).toBe('code');
    expect(stepUpNeed(403, { detail: 'x', step_up: 'enrol' })).toBe('enrol');
    expect(stepUpNeed(403, { detail: 'admins only' })).toBeNull();
    expect(stepUpNeed(403, { detail: 'x', step_up: 'sms' })).toBeNull();
    expect(stepUpNeed(401, { detail: 'x', step_up: 'code' })).toBeNull();
    expect(stepUpNeed(403, null)).toBeNull();
    expect(stepUpNeed(403, 'step_up')).toBeNull();
  });
});

describe('a login answer', () => {
  it('is a challenge only with two_factor_required and a challenge', () => {
    expect(isLoginChallenge({ two_factor_required: true, challenge: 'abc', expires_in: 300 })).toBe(true);
    expect(isLoginChallenge({ access_token: 'a', refresh_token: 'r' })).toBe(false);
    expect(isLoginChallenge({ two_factor_required: false, challenge: 'abc' })).toBe(false);
    expect(isLoginChallenge({ two_factor_required: true })).toBe(false);
    expect(isLoginChallenge(null)).toBe(false);
  });
});

describe('a typed code', () => {
  it('loses its spaces', () => {
    expect(normaliseCode(' 123 456 ')).toBe('123456');
    expect(normaliseCode('abcde-23456\n')).toBe('abcde-23456');
  });
  it('is 6 digits or a recovery code', () => {
    for (const ok of ['123456', '123 456', 'abcde-23456', 'ABCDE-23456', 'abcde23456']) expect(codeProblem(ok)).toBeNull();
    expect(codeProblem('')).toMatch(/^Enter the 6-digit code/);
    expect(codeProblem('12345')).toBe('The code from your app has 6 digits; this has 5.');
    expect(codeProblem('1234567')).toBe('The code from your app has 6 digits; this has 7.');
    expect(codeProblem('abc-123')).toMatch(/recovery code such as abcde-12345/);
  });
});

describe('texts', () => {
  it('server times without a zone are UTC', () => {
    expect(parseServerTime('2026-03-01T10:00:00')).toBe(Date.UTC(2026, 2, 1, 10));
    expect(parseServerTime('2026-03-01T10:00:00Z')).toBe(Date.UTC(2026, 2, 1, 10));
    expect(parseServerTime('2026-03-01T12:00:00+02:00')).toBe(Date.UTC(2026, 2, 1, 10));
    expect(parseServerTime('soon')).toBeNull();
    expect(parseServerTime(null)).toBeNull();
  });
  it('a step-up lasts until its time, in the browser clock', () => {
    const until = Date.UTC(2026, 2, 1, 10, 5);
    const iso = new Date(until).toISOString();
    expect(stepUpText(iso, until - 60_000)).toBe(`Confirmed until ${clockText(until)}`);
    expect(clockText(until)).toMatch(/^\d\d:\d\d$/);
    expect(stepUpText(iso, until)).toBeNull();
    expect(stepUpText(null, until)).toBeNull();
  });
  it('Retry-After in seconds or as a date', () => {
    const now = Date.UTC(2026, 2, 1, 10);
    expect(retryAfterText('30', now)).toBe('in 30 s');
    expect(retryAfterText('300', now)).toBe('in 5 min');
    expect(retryAfterText(new Date(now + 90_000).toUTCString(), now)).toBe('in 90 s');
    expect(retryAfterText('0', now)).toBeNull();
    expect(retryAfterText(null, now)).toBeNull();
    expect(retryAfterText('later', now)).toBeNull();
  });
  it('a server message as a sentence', () => {
    expect(asSentence('saving a key needs a code: enter one and try again')).toBe('Saving a key needs a code: enter one and try again.');
    expect(asSentence('Done!')).toBe('Done!');
    expect(asSentence('  ')).toBe('');
  });
  it('the secret in groups of four, the recovery codes one a line', () => {
    expect(groupedSecret('JBSWY3DPEHPK3PXPJBSWY3DP')).toBe('JBSW Y3DP EHPK 3PXP JBSW Y3DP');
    expect(groupedSecret('ABCDEF')).toBe('ABCD EF');
    const text = recoveryCodesText(['aaaaa-bbbbb', 'ccccc-ddddd'], 'bot.example', Date.UTC(2026, 2, 1, 10, 5));
    expect(text.split('\n')).toEqual([
      'Durabot recovery codes for bot.example, made 2026-03-01 10:05 UTC.',
      'Each code signs you in once instead of the code from your authenticator app. Keep them offline.',
      '', 'aaaaa-bbbbb', 'ccccc-ddddd', '',
    ]);
  });
});
