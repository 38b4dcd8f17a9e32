// The exchange's filters of the symbols this account can trade (GET /api/market/symbols for its market
// and currency), so every price shows as many decimals as its symbol's tick size. Until they load, or
// for a symbol the account cannot trade, prices fall back to formatPrice's significant digits.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { call, http, type Schemas } from '../api/client';
import { formatPrice } from '../lib/format';
import { useLiveEvents } from './live';

type Filters = Schemas['SymbolFiltersOut'];
type Market = Filters['market'];

interface Account {
  market: Market;
  currency: string;
}

const SymbolsContext = createContext<Readonly<Record<string, Filters>>>({});

export function SymbolsProvider({ children }: { children: ReactNode }) {
  const [account, setAccount] = useState<Account | null>(null);
  const [filters, setFilters] = useState<Record<string, Filters>>({});

  // The market and currency change only on a fresh account, and every settings save says so.
  const loadAccount = useCallback(() => {
    void call(() => http.GET('/api/paper-trading/basic-settings')).then((r) => {
      const s = r.settings as { market?: Market; account_currency?: string };
      const next = { market: s.market ?? 'futures', currency: s.account_currency ?? 'USDT' };
      setAccount((held) => (held?.market === next.market && held.currency === next.currency ? held : next));
    }, () => undefined);
  }, []);
  useEffect(loadAccount, [loadAccount]);
  useLiveEvents(['BotStatusUpdate'], loadAccount);

  useEffect(() => {
    if (!account) return;
    let live = true;
    void call(() => http.GET('/api/market/symbols', { params: { query: { market: account.market, quote_asset: account.currency } } }))
      .then((rows) => live && setFilters(Object.fromEntries(rows.map((f) => [f.symbol, f]))), () => undefined);
    return () => void (live = false);
  }, [account]);

  return <SymbolsContext.Provider value={filters}>{children}</SymbolsContext.Provider>;
}

export function useSymbolFilters(): Readonly<Record<string, Filters>> {
  return useContext(SymbolsContext);
}

/** ``price(symbol, value)``: the value with the symbol's price decimals. */
export function usePriceFormat(): (symbol: unknown, value: number | null | undefined) => string {
  const filters = useSymbolFilters();
  return useCallback((symbol, value) => formatPrice(value, filters[String(symbol)]?.price_decimals), [filters]);
}
