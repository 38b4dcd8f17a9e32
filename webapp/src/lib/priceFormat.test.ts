import { describe, expect, it } from 'vitest';
import { formatPrice } from './format';

describe('prices at the tick size', () => {
  it('shows exactly the decimals of the tick', () => {
    expect(formatPrice(0.00010234, 8)).toBe('0.00010234');
    expect(formatPrice(0.0994, 6)).toBe('0.099400');
    expect(formatPrice(42000.5, 2)).toBe('42,000.50');
    expect(formatPrice(16542.1, 1)).toBe('16,542.1');
    expect(formatPrice(3, 0)).toBe('3');
    expect(formatPrice(null, 2)).toBe('—');
  });
  it('falls back to significant digits while the filters load or for an unlisted symbol', () => {
    expect(formatPrice(0.091234, undefined)).toBe('0.091234');
    expect(formatPrice(0.091234, null)).toBe('0.091234');
    expect(formatPrice(42000.5)).toBe('42,000.50');
    expect(formatPrice(1.5, -1)).toBe('1.5000');
    expect(formatPrice(1.5, 2.5)).toBe('1.5000');
  });
});
