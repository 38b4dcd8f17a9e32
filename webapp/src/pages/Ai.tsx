// AI: Grok's analysis of a symbol's latest candle on demand (or the technical fallback and its reason),
// Grok's recent answers about that symbol, today's spend against the budgets with the circuit breaker,
// and a chat about the user's own account. The spend reloads after every analysis and answer.
import { useState } from 'react';
import { call, http } from '../api/client';
import { AiAnalysisCard, type Subject } from '../components/AiAnalysis';
import { AiChatCard } from '../components/AiChat';
import { AiSignalsCard, AiUsageCard } from '../components/AiUsage';
import { defaultSymbol } from '../lib/ai';
import { useLoad } from '../lib/hooks';

export function Ai() {
  const status = useLoad(() => call(() => http.GET('/api/paper-trading/status')));
  const usage = useLoad(() => call(() => http.GET('/api/ai/usage')));
  const [analysed, setAnalysed] = useState<Subject | null>(null);
  const initialSymbol = defaultSymbol(status.data?.symbols);
  const subject = analysed ?? { symbol: initialSymbol, interval: '5m' };
  const signals = useLoad(() => call(() => http.GET('/api/ai/signals/{symbol}', {
    params: { path: { symbol: subject.symbol }, query: { interval: subject.interval, limit: 10 } },
  })), [subject.symbol, subject.interval]);

  const analysedNow = (next: Subject) => {
    setAnalysed(next);
    // The same subject again: its list reloads here (a new one reloads by its dependencies).
    if (next.symbol === subject.symbol && next.interval === subject.interval) signals.reload();
    usage.reload();
  };

  return (
    <div className="grid">
      <AiAnalysisCard initialSymbol={initialSymbol} onAnalysed={analysedNow} />
      <AiUsageCard usage={usage} />
      <AiChatCard onAnswered={usage.reload} />
      <AiSignalsCard symbol={subject.symbol} interval={subject.interval} signals={signals} />
    </div>
  );
}
