// A button whose action asks first: a modal dialog says what will happen and offers Cancel (focused, so
// Enter or Escape never acts by accident) and a button named for the action itself.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';

export interface ConfirmText {
  /** The question, e.g. "Close trade #12?" */
  title: string;
  /** What will happen, in the trader's terms. */
  body: ReactNode;
  /** The confirming button, named for the action: "Close trade #12". */
  action: string;
}

export function ConfirmButton({ children, confirm, onConfirm, className, disabled, label }: {
  children: ReactNode;
  /** Built when the button is pressed (it may ask the API first), so it names the state at that moment. */
  confirm: () => ConfirmText | Promise<ConfirmText>;
  onConfirm: () => void;
  className?: string;
  disabled?: boolean;
  /** The button's accessible name when its text is short ("Close"). */
  label?: string;
}) {
  const [asking, setAsking] = useState<ConfirmText | null>(null);
  const [preparing, setPreparing] = useState(false);
  const ask = async () => {
    setPreparing(true);
    try {
      setAsking(await confirm());
    } finally {
      setPreparing(false);
    }
  };
  return (
    <>
      <button className={className} disabled={disabled || preparing} aria-label={label} aria-haspopup="dialog"
        onClick={() => void ask()}>
        {children}
      </button>
      {asking ? (
        <ConfirmDialog text={asking} onCancel={() => setAsking(null)} onConfirm={() => {
          setAsking(null);
          onConfirm();
        }} />
      ) : null}
    </>
  );
}

function ConfirmDialog({ text, onCancel, onConfirm }: { text: ConfirmText; onCancel: () => void; onConfirm: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    el.showModal();
    return () => el.close();
  }, []);
  return (
    // Escape fires "cancel"; the browser would close the dialog itself, React state closes it instead.
    <dialog ref={dialog} className="confirm" aria-labelledby={`${id}-title`} aria-describedby={`${id}-body`}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}>
      <h2 id={`${id}-title`}>{text.title}</h2>
      <div id={`${id}-body`} className="confirm-body">{text.body}</div>
      <div className="confirm-actions">
        <button autoFocus onClick={onCancel}>Cancel</button>
        <button className="danger" onClick={onConfirm}>{text.action}</button>
      </div>
    </dialog>
  );
}
