// Recovery codes, shown once (after turning two-factor on, or regenerating them): the server keeps only
// their digests, so this is the person's one chance to copy or download them.
import { useState } from 'react';
import { recoveryCodesText } from '../lib/twoFactor';

export function RecoveryCodes({ codes, onDone }: { codes: readonly string[]; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const text = () => recoveryCodesText(codes, location.host, Date.now());

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text());
      setCopied('Copied.');
    } catch {
      // The clipboard needs a secure context (https or localhost): elsewhere the codes are selectable text.
      setCopied('This browser did not allow copying: select the codes and copy them, or download them.');
    }
  };

  const download = () => {
    const url = URL.createObjectURL(new Blob([text()], { type: 'text/plain' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = 'durabot-recovery-codes.txt';
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <div className="recovery" data-testid="recovery-codes">
      <h3>Your recovery codes</h3>
      <p role="status">
        <strong>Store these codes somewhere safe now: they are shown only this once.</strong> Each one signs you in
        once instead of the code from your authenticator app, if you lose it.
      </p>
      <ol className="recovery-codes">
        {codes.map((code) => <li key={code}><code>{code}</code></li>)}
      </ol>
      <div className="button-row">
        <button onClick={() => void copy()}>Copy codes</button>
        <button onClick={download}>Download codes</button>
        <button className="primary" onClick={onDone}>I have stored them</button>
      </div>
      {copied ? <p className="muted" aria-live="polite">{copied}</p> : null}
    </div>
  );
}
