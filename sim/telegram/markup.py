"""``reply_markup``: inline keyboards checked as Telegram checks them (callback_data 1-64 bytes, a button needs
an action, at most 100 buttons); reply keyboards, keyboard removal and force_reply are accepted as given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.telegram.errors import bad_request
from sim.telegram.text import checked_link

MAX_BUTTONS = 100
MAX_CALLBACK_DATA_BYTES = 64
# Button kinds other than url and callback_data that Telegram takes; the sim stores them and shows them.
_OTHER_ACTIONS = ("callback_game", "pay", "switch_inline_query", "switch_inline_query_current_chat",
                  "switch_inline_query_chosen_chat", "login_url", "web_app", "copy_text")


@dataclass(frozen=True)
class Markup:
    """``inline``: an inline keyboard markup (shown on the message and pressable); ``other``: a reply
    keyboard, its removal or force_reply (kept for the record; not part of the message object)."""

    inline: dict[str, Any] | None = None
    other: dict[str, Any] | None = None


def _button_error(message: str) -> Exception:
    return bad_request(f"can't parse inline keyboard button: {message}")


def _non_empty_string(button: dict[str, Any], name: str) -> str | None:
    value = button.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _button_error(f'Field "{name}" must be of type String')
    return value or None


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise _button_error("InlineKeyboardButton must be an Object")
    if "text" not in button:
        raise _button_error('Can\'t find field "text"')
    if not isinstance(button["text"], str):
        raise _button_error('Field "text" must be of type String')
    kept = {name: value for name, value in button.items() if value is not None}
    url = _non_empty_string(button, "url")
    data = _non_empty_string(button, "callback_data")
    if url is not None:
        if checked_link(url) is None:
            raise bad_request("BUTTON_URL_INVALID")
        kept.pop("callback_data", None)
    elif data is not None:
        if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    elif not any(name in button for name in _OTHER_ACTIONS):
        # An empty callback_data counts as none: Telegram's words for it are these, not BUTTON_DATA_INVALID.
        raise _button_error("Text buttons are unallowed in the inline keyboard")
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    return kept


def _inline_keyboard(rows: Any) -> dict[str, Any] | None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    keyboard = [[_inline_button(button) for button in row] for row in rows]
    keyboard = [row for row in keyboard if row]
    if sum(len(row) for row in keyboard) > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return {"inline_keyboard": keyboard} if keyboard else None


def _reply_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    rows = markup["keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            text = button.get("text") if isinstance(button, dict) else button
            if not isinstance(text, str):
                raise bad_request("can't parse keyboard button: KeyboardButton must be a String or an Object")
    return {name: value for name, value in markup.items() if value is not None}


def parse_reply_markup(value: Any) -> Markup:
    """A decoded ``reply_markup`` argument (None when absent) as the message will carry it."""
    if value is None:
        return Markup()
    if not isinstance(value, dict):
        raise bad_request("object expected as reply markup")
    if value.get("keyboard"):
        return Markup(other=_reply_keyboard(value))
    if value.get("inline_keyboard") is not None:
        inline = _inline_keyboard(value["inline_keyboard"])
        if inline is not None:
            return Markup(inline=inline)
    if value.get("remove_keyboard") or value.get("hide_keyboard") or value.get("force_reply"):
        return Markup(other={name: item for name, item in value.items() if item is not None})
    return Markup()


def callback_buttons(inline: dict[str, Any] | None) -> list[str]:
    """Every callback_data of an inline keyboard, in reading order."""
    if inline is None:
        return []
    return [button["callback_data"] for row in inline["inline_keyboard"] for button in row
            if isinstance(button.get("callback_data"), str) and button["callback_data"]]
