// One setting's input, built from its schema entry: the label (never the API's key), the unit, the help
// and any message tied to the input as its description, min/max on numbers, a select for a choice, a
// checkbox for a flag, checkboxes for a list and a number per key for a map (the strategy weights).
import { useState, type ChangeEvent } from 'react';
import { choiceText, parseDraft, type Draft, type Field, type SettingInfo } from '../lib/settingsForm';

export interface FieldMessage {
  text: string;
  /** form: the browser's own check while typing; server: the API refused the value. */
  from: 'form' | 'server';
}

export function inputId(path: string, key?: string): string {
  return `setting-${path.replace(/\./g, '-')}${key ? `-${key}` : ''}`;
}

function numberAttrs(info: SettingInfo) {
  return {
    type: 'number',
    min: info.minimum ?? undefined,
    max: info.maximum ?? undefined,
    step: info.kind === 'integer' ? 1 : 'any',
  } as const;
}

export function SettingField({ field, schema, draft, onChange, message, disabled, note, unit }: {
  field: Field;
  schema: readonly SettingInfo[];
  draft: Draft;
  onChange: (draft: Draft) => void;
  /** The server's refusal of this field, when it refused it. */
  message?: FieldMessage | null;
  disabled?: boolean;
  /** Why the field is disabled, shown under its help. */
  note?: string;
  /** The unit to show instead of the schema's (the account's currency for "account currency"). */
  unit?: string;
}) {
  const { info } = field;
  const id = inputId(info.path);
  // A number input holds "" while its text does not parse (e.g. "1e"); the browser says so, not the draft.
  const [unparsable, setUnparsable] = useState(false);
  const parsed = parseDraft(field, draft);
  const typed = unparsable
    ? `${info.label} must be a number`
    : 'message' in parsed ? parsed.message : parsed.hint ?? null;
  const shown: FieldMessage | null = message ?? (typed ? { text: typed, from: 'form' } : null);
  const unitText = unit ?? info.unit;
  const described = [
    unitText && !field.keys ? `${id}-unit` : null,
    info.help ? `${id}-help` : null,
    note ? `${id}-note` : null,
    shown ? `${id}-message` : null,
  ].filter(Boolean).join(' ') || undefined;
  const invalid = shown ? true : undefined;
  const onNumber = (e: ChangeEvent<HTMLInputElement>, next: Draft) => {
    setUnparsable(e.target.validity.badInput);
    onChange(next);
  };

  let control;
  if (field.keys) {
    const texts = draft as Record<string, string>;
    control = (
      <fieldset className="setting-map" aria-describedby={described} disabled={disabled}>
        <legend>{info.label}{unitText ? ` (${unitText})` : ''}</legend>
        {field.keys.map((key) => (
          <div key={key} className="setting-key">
            <label htmlFor={inputId(info.path, key)}>{choiceText(schema, key)}</label>
            <input id={inputId(info.path, key)} {...numberAttrs(info)} value={texts[key] ?? ''} placeholder="1"
              aria-invalid={invalid} onChange={(e) => onNumber(e, { ...texts, [key]: e.target.value })} />
          </div>
        ))}
      </fieldset>
    );
  } else if (info.kind === 'list') {
    const ticked = draft as string[];
    control = (
      <fieldset className="checks" aria-describedby={described} disabled={disabled}>
        <legend>{info.label}</legend>
        {info.choices.map((choice) => (
          <label key={choice} className="check">
            <input type="checkbox" value={choice} checked={ticked.includes(choice)}
              onChange={(e) => onChange(e.target.checked ? [...ticked, choice] : ticked.filter((c) => c !== choice))} />
            {choiceText(schema, choice)}
          </label>
        ))}
      </fieldset>
    );
  } else if (info.kind === 'flag') {
    control = (
      <label className="check" htmlFor={id}>
        <input id={id} type="checkbox" checked={Boolean(draft)} disabled={disabled} aria-describedby={described}
          onChange={(e) => onChange(e.target.checked)} />
        {info.label}
      </label>
    );
  } else {
    let input;
    if (info.kind === 'choice') {
      input = (
        <select id={id} value={String(draft)} disabled={disabled} aria-describedby={described} aria-invalid={invalid}
          onChange={(e) => onChange(e.target.value)}>
          {info.optional ? <option value="">off</option> : null}
          {info.choices.map((choice) => (
            <option key={choice} value={choice}>{choiceText(schema, choice)}</option>
          ))}
        </select>
      );
    } else if (info.kind === 'number' || info.kind === 'integer') {
      input = (
        <input id={id} {...numberAttrs(info)} value={String(draft)} disabled={disabled} aria-describedby={described}
          aria-invalid={invalid} placeholder={info.optional ? 'off' : undefined}
          onChange={(e) => onNumber(e, e.target.value)} />
      );
    } else {
      input = (
        <input id={id} value={String(draft)} disabled={disabled} aria-describedby={described} aria-invalid={invalid}
          autoCapitalize="characters" spellCheck={false} onChange={(e) => onChange(e.target.value)} />
      );
    }
    control = (
      <>
        <label htmlFor={id}>{info.label}</label>
        <div className="setting-input">
          {input}
          {unitText ? <span className="unit" id={`${id}-unit`}>{unitText}</span> : null}
        </div>
      </>
    );
  }

  return (
    <div className="setting" data-testid="setting" data-path={info.path}>
      {control}
      {info.help ? <p className="help" id={`${id}-help`}>{info.help}</p> : null}
      {note ? <p className="help note" id={`${id}-note`}>{note}</p> : null}
      {shown ? (
        <p className="field-message" id={`${id}-message`} data-from={shown.from} role={shown.from === 'server' ? 'alert' : undefined}>
          {shown.text}
        </p>
      ) : null}
    </div>
  );
}
