// A conversation with Grok about the user's own account and the market. Grok answers with read-only
// tools (portfolio, trades, candles, indicators); each answer lists the tools it used. Every message
// carries the conversation's earlier answered turns, so a follow-up question can lean on them.
import { useState, type FormEvent } from 'react';
import { call, http, type Schemas } from '../api/client';
import { chatHistory, fallbackText, usdText, type ChatExchange } from '../lib/ai';
import { useAction } from '../lib/hooks';
import { Card, ErrorNote } from './ui';

function Tools({ tools }: { tools: Schemas['AiToolUseOut'][] }) {
  if (!tools.length) return null;
  return (
    <ul className="changes muted" data-testid="ai-chat-tools">
      {tools.map((t, i) => (
        <li key={i} data-testid="ai-chat-tool" data-name={t.name} data-ok={String(t.ok)}>
          <code>{t.name}({t.arguments && t.arguments !== '{}' ? t.arguments : ''})</code> {t.ok ? 'ok' : 'failed'}
        </li>
      ))}
    </ul>
  );
}

function Exchange({ e }: { e: ChatExchange }) {
  const { reply } = e;
  return (
    <li className="signal" data-testid="ai-chat-turn">
      <p className="wrap-text"><strong>You:</strong> {e.question}</p>
      {reply.answer != null ? (
        <p className="wrap-text" data-testid="ai-chat-answer"><strong>Grok:</strong> {reply.answer}</p>
      ) : (
        <p className="error wrap-text" role="status" data-testid="ai-chat-fallback">
          No answer. {fallbackText({ reason: reply.fallback_reason, detail: reply.fallback_detail })}
        </p>
      )}
      <Tools tools={reply.tools_used} />
      <p className="muted">{reply.rounds} round(s) · cost {usdText(reply.cost_usd)}</p>
    </li>
  );
}

export function AiChatCard({ onAnswered }: { onAnswered: () => void }) {
  const [exchanges, setExchanges] = useState<ChatExchange[]>([]);
  const [message, setMessage] = useState('');
  const action = useAction();

  const send = (e: FormEvent) => {
    e.preventDefault();
    const question = message.trim();
    if (!question) return;
    void action.run(async () => {
      const reply = await call(() => http.POST('/api/ai/chat', { body: { message: question, history: chatHistory(exchanges) } }));
      setExchanges((held) => [...held, { question, reply }]);
      setMessage('');
      onAnswered();
    });
  };

  return (
    <Card title="Ask Grok">
      <p className="muted">About your paper account and the market: Grok reads them with read-only tools and cannot
        change anything.</p>
      {exchanges.length ? <ol className="list" data-testid="ai-chat-log">{exchanges.map((x, i) => <Exchange key={i} e={x} />)}</ol> : null}
      <form className="inline-form" onSubmit={send} aria-label="Ask Grok">
        <label className="grow">Your question
          <input data-testid="ai-chat-input" value={message} onChange={(e) => setMessage(e.target.value)} maxLength={2000}
            placeholder="What is my balance?" disabled={action.busy} />
        </label>
        <button type="submit" className="primary" disabled={action.busy || !message.trim()}>
          {action.busy ? 'Asking…' : 'Send'}
        </button>
      </form>
      <ErrorNote message={action.error} />
    </Card>
  );
}
