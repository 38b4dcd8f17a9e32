// Telegram: whether a Telegram account is linked to the bot, a one-time link code with its deep link (and the
// offline web chat when the local Telegram stand-in is in use), and unlinking. The code works once and for 10
// minutes; the server keeps only its hash, so it is shown here once (a new one replaces it).
import { useState } from 'react';
import { call, http, type Schemas } from '../api/client';
import { useAction, useLoad } from '../lib/hooks';
import { formatTime } from '../lib/format';
import { parseServerTime } from '../lib/twoFactor';
import { ConfirmButton } from './Confirm';
import { Card, ErrorNote } from './ui';

type LinkCode = Schemas['LinkCodeOut'];

function timeText(iso: string | null | undefined): string {
  return formatTime(parseServerTime(iso));
}

export function TelegramCard() {
  const status = useLoad(() => call(() => http.GET('/api/telegram')));
  const [code, setCode] = useState<LinkCode | null>(null);
  const { busy, error, run } = useAction();

  const getCode = () => run(async () => {
    setCode(await call(() => http.POST('/api/telegram/link-code')));
  });
  const unlink = () => run(async () => {
    await call(() => http.DELETE('/api/telegram/link'));
    setCode(null);
    status.reload();
  });

  const found = status.data;
  return (
    <Card title="Telegram">
      <p className="muted">
        Run Durabot from your phone: link your Telegram account to the bot, then send it /status, /profit,
        /forceexit and the rest (/help lists them). Only your Telegram account, in the chat you link, is obeyed.
      </p>
      {found === undefined ? (
        status.error ? <ErrorNote message={status.error} /> : <p className="muted">Loading…</p>
      ) : found.linked ? (
        <div data-testid="telegram-linked">
          <p>
            Linked to <strong>{found.telegram_username ? `@${found.telegram_username}` : found.telegram_name ?? 'a Telegram account'}</strong>
            {' '}since {timeText(found.linked_at)}; commands address the <strong>{found.mode}</strong> session.
          </p>
          <div className="button-row">
            <ConfirmButton className="danger" disabled={busy} label="Unlink Telegram" onConfirm={() => void unlink()}
              confirm={() => ({
                title: 'Unlink Telegram?',
                body: <p>The bot stops taking commands from that Telegram account at once.</p>,
                action: 'Unlink',
              })}>
              Unlink
            </ConfirmButton>
            <button disabled={busy} onClick={() => status.reload()}>Refresh</button>
          </div>
        </div>
      ) : (
        <div data-testid="telegram-unlinked">
          <p className="muted">No Telegram account is linked.</p>
          {found.bot_configured ? null : (
            <p className="muted">No bot token is set on this server (DURABOT_TELEGRAM_BOT_TOKEN): the code works once a bot runs.</p>
          )}
          {code ? (
            <div className="recovery" data-testid="telegram-code">
              <p role="status">
                Send this to {found.bot_username ? <strong>@{found.bot_username}</strong> : 'the bot'} within 10
                minutes (it works once): <code className="secret" data-testid="telegram-start-command">{code.start_command}</code>
              </p>
              {code.deep_link ? (
                <p><a href={code.deep_link} target="_blank" rel="noreferrer" data-testid="telegram-deep-link">Open in Telegram</a></p>
              ) : null}
              {code.web_chat_url ? (
                <p className="muted">
                  Offline? Try it in the local Telegram stand-in's <a href={code.web_chat_url} target="_blank" rel="noreferrer"
                    data-testid="telegram-web-chat">web chat</a>.
                </p>
              ) : null}
              <p className="muted">Expires {timeText(code.expires_at)}.</p>
            </div>
          ) : null}
          <div className="button-row">
            <button className="primary" disabled={busy} onClick={() => void getCode()}>
              {code ? 'Get a new code' : 'Get a link code'}
            </button>
            <button disabled={busy} onClick={() => status.reload()}>I have linked it</button>
          </div>
        </div>
      )}
      <ErrorNote message={error} />
    </Card>
  );
}
