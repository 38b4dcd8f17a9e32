import { describe, expect, it } from 'vitest';
import {
  approvalTextMatches, auditRow, auditTime, changeText, clockOffset, countdownText, largestChangeText, outcomeText, rangeText, spanText,
  valueText,
} from './tuning';

describe('tuning countdowns', () => {
  const now = 1_700_000_000_000;
  it('counts down in days, hours, minutes and seconds, and says when it has passed', () => {
    expect(countdownText(now + 9_000, now)).toBe('9s');
    expect(countdownText(now + 125_000, now)).toBe('2m 05s');
    expect(countdownText(now + (5 * 3600 + 59 * 60 + 58) * 1000, now)).toBe('5h 59m 58s');
    expect(countdownText(now + (2 * 86_400 + 3 * 3600 + 4 * 60) * 1000, now)).toBe('2d 3h 04m');
    // A part of a second left still counts as a second: "expired" only once it has.
    expect(countdownText(now + 1, now)).toBe('1s');
    expect(countdownText(now, now)).toBe('expired');
    expect(countdownText(now - 5_000, now)).toBe('expired');
    expect(countdownText(null, now)).toBe('—');
  });
  it("runs on the server's clock when the server gave its time", () => {
    expect(clockOffset(now + 2_000, now)).toBe(2_000);
    expect(clockOffset(0, now)).toBe(0); // no tuning workflow yet: no time to go by
    expect(clockOffset(undefined, now)).toBe(0);
  });
  it('writes cooldown lengths in the largest whole unit', () => {
    expect(spanText(21_600)).toBe('6 h');
    expect(spanText(5_400)).toBe('90 min');
    expect(spanText(45)).toBe('45 s');
    expect(spanText(0)).toBe('0 s');
  });
});

describe('RED approval text', () => {
  const text = 'I approve risk.risk_per_trade_pct = 2';
  it('enables Approve only on the exact text', () => {
    expect(approvalTextMatches(text, text)).toBe(true);
    expect(approvalTextMatches('', text)).toBe(false);
    expect(approvalTextMatches(`${text} `, text)).toBe(false);
    expect(approvalTextMatches(text.toLowerCase(), text)).toBe(false);
    expect(approvalTextMatches('I approve risk.risk_per_trade_pct = 2.0', text)).toBe(false);
    // No approval text (not a RED proposal): never enabled by typing.
    expect(approvalTextMatches('', '')).toBe(false);
  });
});

describe('tuning values and history', () => {
  it('shows values as a person reads them', () => {
    expect(valueText(null)).toBe('off');
    expect(valueText(3)).toBe('3');
    expect(valueText(0.1 + 0.2)).toBe('0.3');
    expect(valueText(['a'])).toBe('["a"]');
    expect(changeText({ path: 'take_profit_pct', label: 'Take profit', current: 6, proposed: 3 })).toBe('Take profit: 6 → 3');
    expect(changeText({ path: 'stop_loss_pct', current: 2, proposed: null }, { stop_loss_pct: 'Stop loss' })).toBe('Stop loss: 2 → off');
    expect(changeText({ path: 'x.y', current: 1, proposed: 2 })).toBe('x.y: 1 → 2');
    expect(rangeText(0.2, 50, '%')).toBe('0.2 – 50%');
    expect(rangeText(1, 20, '')).toBe('1 – 20');
    expect(rangeText(0, 1440, 'minutes')).toBe('0 – 1440 minutes');
    expect(largestChangeText(5, null)).toBe('5');
    expect(largestChangeText(null, 2)).toBe('×2'); // sizes grow by a factor
    expect(largestChangeText(null, null)).toBe('—');
  });
  it('reads audit times with or without a zone as UTC', () => {
    expect(auditTime('2024-05-01T12:00:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(auditTime('2024-05-01T12:00:00.250Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 250));
    expect(auditTime('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(auditTime('yesterday')).toBeNull();
    expect(auditTime(null)).toBeNull();
  });
  it('turns an audit entry into a history row', () => {
    const row = auditRow({
      at: '2024-05-01T12:00:00', action: 'tuning_applied', actor_id: 'dashboard',
      details: {
        proposal_id: 'p1', tier: 'YELLOW', reason: 'stopped_after_running: …',
        proposer: { kind: 'rule', name: 'stopped_after_running', channel: 'rest' },
        changes: [{ path: 'take_profit_pct', current: 6, proposed: 3 }, { bad: true }],
      },
    });
    expect(row).toEqual({
      at: Date.UTC(2024, 4, 1, 12), action: 'applied', tier: 'YELLOW', who: 'dashboard', proposer: 'rule stopped_after_running',
      reason: 'stopped_after_running: …', changes: [{ path: 'take_profit_pct', current: 6, proposed: 3 }],
    });
    const bare = auditRow({ at: null, action: 'tuning_expired', actor_id: null, details: {} });
    expect([bare.action, bare.who, bare.changes, bare.tier, bare.proposer]).toEqual(['expired', '—', [], '', '']);
  });
  it('says what came of a proposal', () => {
    expect(outcomeText({ number: 4, status: 'APPLIED', tier: 'GREEN', applied_version: 7 })).toBe('Proposal #4 (GREEN) applied: settings version 7.');
    expect(outcomeText({ number: 5, status: 'AWAITING', tier: 'YELLOW' })).toBe('Proposal #5 (YELLOW) awaits your approval in the queue.');
    expect(outcomeText({ number: 6, status: 'FAILED', tier: 'YELLOW', failure: 'settings moved on' })).toBe('Proposal #6 failed: settings moved on.');
    expect(outcomeText({ number: 7, status: 'REJECTED', tier: 'RED' })).toBe('Proposal #7 is rejected.');
  });
});
