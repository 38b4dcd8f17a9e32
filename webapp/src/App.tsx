import { useEffect, useState } from 'react';
import { getTokens, http, onTokens, setTokens, type Tokens } from './api/client';
import { ConnectionBadge, LiveProvider } from './components/live';
import { SymbolsProvider } from './components/symbols';
import { EnrolNotice, StepUpProvider } from './components/StepUp';
import { SimBanner, SystemProvider } from './components/system';
import { CONSENT_PATH } from './lib/agentAccess';
import { Link, navigate, usePath } from './lib/router';
import { Ai } from './pages/Ai';
import { Backtests } from './pages/Backtests';
import { Chart } from './pages/Chart';
import { Consent } from './pages/Consent';
import { Login } from './pages/Login';
import { Orders } from './pages/Orders';
import { Overview } from './pages/Overview';
import { Positions } from './pages/Positions';
import { RealTrading } from './pages/RealTrading';
import { Settings } from './pages/Settings';
import { Signals } from './pages/Signals';
import { Tuning } from './pages/Tuning';

export const PAGES = [
  { path: '/', title: 'Overview', page: Overview },
  { path: '/chart', title: 'Chart', page: Chart },
  { path: '/positions', title: 'Positions', page: Positions },
  { path: '/signals', title: 'Signals', page: Signals },
  { path: '/orders', title: 'Orders', page: Orders },
  // Real money: marked in the nav, so it is never taken for the paper pages around it.
  { path: '/real-trading', title: 'Real trading', page: RealTrading, real: true },
  { path: '/backtests', title: 'Backtests', page: Backtests },
  { path: '/tuning', title: 'Tuning', page: Tuning },
  { path: '/ai', title: 'AI', page: Ai },
  { path: '/settings', title: 'Settings', page: Settings },
] as const;

// Where /oauth/authorize sends the browser (an MCP app asks for access): a page of its own, not in the nav.
const CONSENT_PAGE = { path: CONSENT_PATH, title: 'Authorize an app', page: Consent };

function Shell({ tokens }: { tokens: Tokens }) {
  const path = usePath();
  const current = path === CONSENT_PAGE.path ? CONSENT_PAGE : PAGES.find((p) => p.path === path) ?? PAGES[0];
  const Page = current.page;
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    document.title = `${current.title} · Durabot`;
    setMenuOpen(false);
  }, [current.title]);

  const logout = async () => {
    await http.POST('/api/auth/logout').catch(() => undefined);
    setTokens(null);
    navigate('/');
  };

  return (
    <LiveProvider token={tokens.access_token}>
      <StepUpProvider>
        <a className="skip" href="#main">Skip to content</a>
        <header className="top">
          <span className="brand">Durabot</span>
          {/* On a phone the pages fold into a menu: ten links do not fit 390 px side by side. */}
          <button className="menu-toggle" aria-expanded={menuOpen} aria-controls="nav-pages"
            onClick={() => setMenuOpen(!menuOpen)}>
            Menu<span className="visually-hidden">: {current.title}</span>
          </button>
          <nav aria-label="Pages" id="nav-pages" className={menuOpen ? 'open' : undefined}>
            {PAGES.map((p) => (
              <Link key={p.path} href={p.path} aria-current={p.path === current.path ? 'page' : undefined}
                className={'real' in p ? 'nav-real' : undefined}>
                {p.title}
                {'real' in p ? <span className="real-badge" aria-hidden="true">REAL</span> : null}
              </Link>
            ))}
          </nav>
          <ConnectionBadge />
          <button className="link" onClick={() => void logout()}>Log out</button>
        </header>
        <SimBanner />
        <EnrolNotice />
        <main id="main" tabIndex={-1}>
          <h1>{current.title}</h1>
          <SymbolsProvider>
            <Page />
          </SymbolsProvider>
        </main>
      </StepUpProvider>
    </LiveProvider>
  );
}

export default function App() {
  const [tokens, setState] = useState<Tokens | null>(getTokens());
  useEffect(() => onTokens(setState), []);
  return <SystemProvider>{tokens ? <Shell tokens={tokens} /> : <Login />}</SystemProvider>;
}
