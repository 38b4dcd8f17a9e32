"""Message text as Telegram takes it: parse_mode HTML, MarkdownV2 or Markdown turned into plain text plus
entities (offsets in UTF-16 code units), the same refusals with the same words, then trimmed and measured.

The parsers follow TDLib's (td/telegram/MessageEntity.cpp): they walk the UTF-8 bytes, so error messages
name byte offsets exactly as Telegram's do ("Unsupported start tag "foo" at byte offset 5").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sim.telegram.errors import BotApiError, bad_request

MAX_TEXT_UTF16 = 4096
MAX_RAW_TEXT_BYTES = 1 << 15

_SPACE = frozenset(b" \t\r\n\0\v\f")
_HTML_TAGS = frozenset({"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
                        "tg-time", "span", "pre", "code", "blockquote"})
_HTML_KIND = {"i": "italic", "em": "italic", "b": "bold", "strong": "bold", "s": "strikethrough",
              "strike": "strikethrough", "del": "strikethrough", "u": "underline", "ins": "underline",
              "tg-spoiler": "spoiler", "span": "spoiler"}
# TDLib's names of entity types, as its MarkdownV2 errors print them.
_TD_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
             "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode", "text_link": "TextUrl",
             "custom_emoji": "CustomEmoji", "blockquote": "BlockQuote",
             "expandable_blockquote": "ExpandableBlockQuote"}
_MD2_RESERVED = frozenset(b"_*[]()~`>#+-=|{}.!\n")
_DOMAIN_LINK = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(:\d{1,5})?([/?#].*)?$")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utf16_units(byte: int) -> int:
    """UTF-16 units that begin at this UTF-8 byte: 0 for continuation bytes, 2 for 4-byte sequences."""
    if byte & 0xC0 == 0x80:
        return 0
    return 2 if byte >= 0xF0 else 1


def _error(message: str) -> BotApiError:
    return bad_request(f"can't parse entities: {message}")


@dataclass
class _Open:
    kind: str
    argument: str
    offset: int  # UTF-16 offset in the plain text
    source_pos: int  # byte offset in the marked-up source (named by errors)
    out_pos: int  # byte offset in the plain text


class _Bytes:
    """The source's UTF-8 bytes, read past the end as NUL like TDLib's C strings."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", errors="replace")
        self.size = len(self.data)

    def __getitem__(self, index: int) -> int:
        return self.data[index] if index < self.size else 0


def checked_link(url: str) -> str | None:
    """The link Telegram keeps for a text_link, or None when it drops the entity (not a valid URL)."""
    url = url.strip()
    lowered = url.lower()
    if lowered.startswith(("tg:", "ton:")):
        return url if len(url) > lowered.index(":") + 1 else None
    if lowered.startswith(("http://", "https://")):
        rest = url.split("://", 1)[1]
        return url + ("/" if "/" not in rest and "?" not in rest and "#" not in rest else "") if rest else None
    if _DOMAIN_LINK.match(url):
        return checked_link("http://" + url)
    return None


def _entity(kind: str, offset: int, length: int, argument: str = "") -> dict[str, Any]:
    entity: dict[str, Any] = {"type": "pre" if kind == "pre_code" else kind, "offset": offset, "length": length}
    if kind == "pre_code":
        entity["language"] = argument
    elif kind == "text_link":
        entity["url"] = argument
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = argument
    return entity


def _html_entity(src: _Bytes, pos: int) -> tuple[int, int] | None:
    """A character reference at ``pos`` ('&'): (code point, position after it), or None when it is not one
    (then '&' stands for itself). Only lt, gt, amp, quot and numeric references count; ';' is optional."""
    end = pos + 1
    code = 0
    if src[end] == ord("#"):
        end += 1
        if src[end] == ord("x"):
            end += 1
            while chr(src[end]) in "0123456789abcdefABCDEF" and src[end]:
                code = code * 16 + int(chr(src[end]), 16)
                end += 1
        else:
            while ord("0") <= src[end] <= ord("9"):
                code = code * 10 + src[end] - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(src[end]).isascii() and chr(src[end]).isalpha():
            end += 1
        name = src.data[pos + 1:end]
        named = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}.get(name)
        if named is None:
            return None
        code = ord(named)
    return code, end + 1 if src[end] == ord(";") else end


def _append_code_point(out: bytearray, code: int) -> None:
    out += (chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd").encode()


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    src = _Bytes(source)
    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    opened: list[_Open] = []
    i = 0
    while i < src.size:
        c = src[i]
        if c == ord("&"):
            decoded = _html_entity(src, i)
            if decoded is not None:
                code, i = decoded
                utf16 += 2 if code > 0xFFFF else 1
                _append_code_point(out, code)
                continue
        if c != ord("<"):
            utf16 += _utf16_units(c)
            out.append(c)
            i += 1
            continue
        begin = i
        i += 1
        if src[i] != ord("/"):
            i = _html_start_tag(src, begin, i, utf16, len(out), opened)
        else:
            i = _html_end_tag(src, begin, i, utf16, out, opened, entities)
        i += 1  # past '>'
    if opened:
        raise _error(f'Can\'t find end tag corresponding to start tag "{opened[-1].kind}"')
    return out.decode("utf-8", errors="replace"), entities


def _skip_spaces(src: _Bytes, i: int) -> int:
    while src[i] != 0 and src[i] in _SPACE:
        i += 1
    return i


def _html_start_tag(src: _Bytes, begin: int, i: int, utf16: int, out_pos: int, opened: list[_Open]) -> int:
    """Reads ``<tag attr=…>`` from after '<'; returns the position of its '>'."""
    while src[i] not in _SPACE and src[i] != ord(">"):
        i += 1
    if src[i] == 0:
        raise _error(f"Unclosed start tag at byte offset {begin}")
    tag = src.data[begin + 1:i].decode(errors="replace").lower()
    if tag not in _HTML_TAGS:
        raise _error(f'Unsupported start tag "{tag}" at byte offset {begin}')
    argument = ""
    while src[i] != ord(">"):
        i = _skip_spaces(src, i)
        if src[i] == ord(">"):
            break
        name_begin = i
        while src[i] not in _SPACE and src[i] not in b"=>/\"'":
            i += 1
        name = src.data[name_begin:i].decode(errors="replace")
        if not name:
            raise _error(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        i = _skip_spaces(src, i)
        if src[i] != ord("="):
            if src[i] == 0:
                raise _error(f'Unclosed start tag "{tag}" at byte offset {begin}')
            if tag == "blockquote" and name == "expandable":
                argument = "1"
            continue
        i = _skip_spaces(src, i + 1)
        if src[i] == 0:
            raise _error(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if src[i] not in b"'\"":
            token_begin = i
            while chr(src[i]).isascii() and (chr(src[i]).isalnum() or src[i] in b".-") and src[i]:
                i += 1
            value = src.data[token_begin:i].decode().lower()
            if src[i] not in _SPACE and src[i] != ord(">"):
                raise _error(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = src[i]
            i += 1
            raw = bytearray()
            while src[i] != quote and src[i] != 0:
                decoded = _html_entity(src, i) if src[i] == ord("&") else None
                if decoded is not None:
                    _append_code_point(raw, decoded[0])
                    i = decoded[1]
                    continue
                raw.append(src[i])
                i += 1
            if src[i] == quote:
                i += 1
            value = raw.decode(errors="replace")
        if src[i] == 0:
            raise _error(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and name == "href":
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[len("language-"):]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[len("tg-"):]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value
        elif tag == "blockquote" and name == "expandable":
            argument = "1"
    if tag == "span" and argument != "spoiler":
        raise _error(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    opened.append(_Open(tag, argument, utf16, begin, out_pos))
    return i


def _html_end_tag(src: _Bytes, begin: int, i: int, utf16: int, out: bytearray, opened: list[_Open],
                  entities: list[dict[str, Any]]) -> int:
    """Reads ``</tag>`` from its '/'; closes the innermost open tag; returns the position of '>'."""
    if not opened:
        raise _error(f"Unexpected end tag at byte offset {begin}")
    while src[i] not in _SPACE and src[i] != ord(">"):
        i += 1
    end_tag = src.data[begin + 2:i].decode(errors="replace").lower()
    i = _skip_spaces(src, i)
    if src[i] != ord(">"):
        raise _error(f"Unclosed end tag at byte offset {begin}")
    top = opened[-1]
    if end_tag and end_tag != top.kind:
        raise _error(f'Unmatched end tag at byte offset {begin}, expected "</{top.kind}>", found "</{end_tag}>"')
    if utf16 > top.offset:
        _close_html(top, utf16, out, entities)
    opened.pop()
    return i


def _close_html(top: _Open, utf16: int, out: bytearray, entities: list[dict[str, Any]]) -> None:
    offset, length, tag = top.offset, utf16 - top.offset, top.kind
    last = entities[-1] if entities else None
    same_range = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _HTML_KIND:
        entities.append(_entity(_HTML_KIND[tag], offset, length))
    elif tag == "tg-emoji":
        if not top.argument.isdigit() or int(top.argument) == 0:
            raise _error("Invalid custom emoji identifier specified")
        entities.append(_entity("custom_emoji", offset, length, top.argument))
    elif tag == "tg-time":
        pass  # a formatted date: accepted, not kept
    elif tag == "a":
        url = checked_link(top.argument or out[top.out_pos:].decode(errors="replace"))
        if url is not None:
            entities.append(_entity("text_link", offset, length, url))
    elif tag == "pre":
        if last is not None and same_range and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
        else:
            entities.append(_entity("pre", offset, length))
    elif tag == "code":
        if last is not None and same_range and last["type"] == "pre" and top.argument:
            last["language"] = top.argument
        else:
            code = _entity("code", offset, length)
            if top.argument:
                code["language"] = top.argument  # dropped again by _public if no <pre> wraps it
            entities.append(code)
    elif tag == "blockquote":
        entities.append(_entity("expandable_blockquote" if top.argument else "blockquote", offset, length))


def _reserved(character: int) -> BotApiError:
    return _error(f"Character '{chr(character)}' is reserved and must be escaped with the preceding '\\'")


def _cant_find_end(kind: str, source_pos: int) -> BotApiError:
    return _error(f"Can't find end of {_TD_NAMES[kind]} entity at byte offset {source_pos}")


def _read_url(src: _Bytes, i: int) -> tuple[str, int]:
    """The ``(url)`` part starting at '(' + 1; escapes unwrapped. Returns (url, position of ')')."""
    url_begin = i
    url = bytearray()
    while i < src.size and src[i] != ord(")"):
        if src[i] == ord("\\") and 0 < src[i + 1] <= 126:
            url.append(src[i + 1])
            i += 2
            continue
        url.append(src[i])
        i += 1
    if src[i] != ord(")"):
        raise _error(f"Can't find end of a URL at byte offset {url_begin}")
    return url.decode(errors="replace"), i


def _md2_is_end(src: _Bytes, i: int, opened: list[_Open], have_blockquote: bool) -> bool:
    if not opened:
        return False
    c = src[i]
    if have_blockquote and c == ord("\n") and (i + 1 == src.size or src[i + 1] != ord(">")):
        return True
    kind = opened[-1].kind
    ends = {
        "bold": c == ord("*"),
        "italic": c == ord("_") and src[i + 1] != ord("_"),
        "code": c == ord("`"),
        "pre": c == ord("`") and src[i + 1] == ord("`") and src[i + 2] == ord("`"),
        "text_link": c == ord("]"),
        "underline": c == ord("_") and src[i + 1] == ord("_"),
        "strikethrough": c == ord("~"),
        "spoiler": c == ord("|") and src[i + 1] == ord("|"),
        "custom_emoji": c == ord("]"),
        "blockquote": False,
    }
    ends["pre_code"] = ends["pre"]
    return ends[kind]


def _pre_start(src: _Bytes, i: int) -> tuple[str, str, int]:
    """After "```" at ``i``: (kind, language, position of the last byte consumed)."""
    i += 3
    kind, language = "pre", ""
    language_end = i
    while src[language_end] not in _SPACE and src[language_end] != ord("`"):
        language_end += 1
    if i != language_end and language_end < src.size and src[language_end] != ord("`"):
        kind, language = "pre_code", src.data[i:language_end].decode(errors="replace")
        i = language_end
    if src[i] in b"\n\r":  # one new line after the opening fence is not part of the text
        i += 2 if src[i + 1] in b"\n\r" and src[i] != src[i + 1] else 1
    return kind, language, i - 1


def parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    src = _Bytes(source)
    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    opened: list[_Open] = []
    have_blockquote = False
    can_start_blockquote = True
    i = 0
    while i < src.size:
        c = src[i]
        if c == ord("\\") and 0 < src[i + 1] <= 126:
            i += 1
            utf16 += 1
            out.append(src[i])
            if src[i] != ord("\r"):
                can_start_blockquote = src[i] == ord("\n")
            i += 1
            continue
        in_code = bool(opened) and opened[-1].kind in ("code", "pre", "pre_code")
        if c not in (b"`" if in_code else _MD2_RESERVED):
            utf16 += _utf16_units(c)
            if _utf16_units(c) and c != ord("\r"):
                can_start_blockquote = False
            out.append(c)
            i += 1
            continue
        if not _md2_is_end(src, i, opened, have_blockquote):
            start = i
            kind, argument = "", ""
            if c == ord("_"):
                kind = "underline" if src[i + 1] == ord("_") else "italic"
                i += 1 if kind == "underline" else 0
            elif c == ord("*"):
                kind = "bold"
            elif c == ord("~"):
                kind = "strikethrough"
            elif c == ord("|"):
                if src[i + 1] != ord("|"):
                    raise _reserved(c)
                kind, i = "spoiler", i + 1
            elif c == ord("["):
                kind = "text_link"
            elif c == ord("`"):
                if src[i + 1] == ord("`") and src[i + 2] == ord("`"):
                    kind, argument, i = _pre_start(src, i)
                else:
                    kind = "code"
            elif c == ord("!"):
                if src[i + 1] != ord("["):
                    raise _reserved(c)
                kind, i = "custom_emoji", i + 1
            elif c == ord("\n"):
                utf16 += 1
                out.append(c)
                can_start_blockquote = True
            elif c == ord(">"):
                if not can_start_blockquote:
                    raise _reserved(c)
                if not have_blockquote:
                    kind, have_blockquote = "blockquote", True
            else:
                raise _reserved(c)
            if kind:
                opened.append(_Open(kind, argument, utf16, start, len(out)))
            i += 1
            continue
        i, utf16, have_blockquote, can_start_blockquote = _md2_close(
            src, i, utf16, out, opened, entities, have_blockquote, can_start_blockquote)
        i += 1
    if have_blockquote:
        kind = "blockquote"
        if opened[-1].kind == "spoiler" and opened[-1].source_pos == src.size - 2:
            opened.pop()
            kind = "expandable_blockquote"
        if opened[-1].kind == "blockquote":
            top = opened.pop()
            if utf16 != top.offset:
                entities.append(_entity(kind, top.offset, utf16 - top.offset))
    if opened:
        raise _cant_find_end(opened[-1].kind, opened[-1].source_pos)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.decode("utf-8", errors="replace"), entities


def _md2_close(src: _Bytes, i: int, utf16: int, out: bytearray, opened: list[_Open], entities: list[dict[str, Any]],
               have_blockquote: bool, can_start_blockquote: bool) -> tuple[int, int, bool, bool]:
    kind = opened[-1].kind
    if src[i] == ord("\n") and kind != "blockquote":
        top = opened[-1]
        # "||" right before the end of a quote's line makes the quote expandable; anything else open is an error.
        if kind != "spoiler" or not (top.source_pos == i - 2 or (top.source_pos == i - 3 and out[-1:] == b"\r")):
            raise _cant_find_end(kind, top.source_pos)
        opened.pop()
        if opened[-1].kind != "blockquote":
            raise _cant_find_end(opened[-1].kind, opened[-1].source_pos)
        kind = "expandable_blockquote"
    top = opened[-1]
    argument = top.argument
    skip = utf16 == top.offset
    if kind in ("underline", "spoiler"):
        i += 1
    elif kind in ("pre", "pre_code"):
        i += 2
    elif kind == "text_link":
        if src[i + 1] != ord("("):
            url = out[top.out_pos:].decode(errors="replace")
        else:
            url, i = _read_url(src, i + 2)
        checked = checked_link(url)
        skip = skip or checked is None
        argument = checked or ""
    elif kind == "custom_emoji":
        if src[i + 1] != ord("("):
            raise _error("The entity must contain a tg://emoji or tg://time URL")
        url, i = _read_url(src, i + 2)
        emoji = re.fullmatch(r"tg://emoji\?id=([1-9]\d*)", url)
        if emoji is not None:
            argument = emoji.group(1)
        elif re.fullmatch(r"tg://time\?unix=\d+(&format=\w*)?", url):
            skip = True  # a formatted date: accepted, not kept
        else:
            raise _error("Invalid tg://emoji or tg://time URL specified")
    elif kind in ("blockquote", "expandable_blockquote"):
        have_blockquote = False
        out.append(src[i])
        can_start_blockquote = True
        utf16 += 1
        skip = False
    if not skip:
        entities.append(_entity(kind, top.offset, utf16 - top.offset, argument))
    opened.pop()
    return i, utf16, have_blockquote, can_start_blockquote


def parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    """The legacy Markdown mode: *bold*, _italic_, `code`, ```pre```, [text](url); '\\' escapes those."""
    src = _Bytes(source)
    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < src.size:
        c = src[i]
        if c == ord("\\") and src[i + 1] in b"_*`[" and src[i + 1]:
            out.append(src[i + 1])
            utf16 += 1
            i += 2
            continue
        if c not in b"_*`[":
            utf16 += _utf16_units(c)
            out.append(c)
            i += 1
            continue
        begin = i
        end_character = ord("]") if c == ord("[") else c
        is_pre = False
        language = ""
        i += 1
        if c == ord("`") and src[i] == ord("`") and src[i + 1] == ord("`"):
            _kind, language, last = _pre_start(src, i - 1)
            i, is_pre = last + 1, True
        offset = utf16
        while i < src.size and (src[i] != end_character
                                or (is_pre and not (src[i + 1] == ord("`") and src[i + 2] == ord("`")))):
            utf16 += _utf16_units(src[i])
            out.append(src[i])
            i += 1
        if i == src.size:
            raise _error(f"Can't find end of the entity starting at byte offset {begin}")
        if offset != utf16:
            length = utf16 - offset
            if c == ord("_"):
                entities.append(_entity("italic", offset, length))
            elif c == ord("*"):
                entities.append(_entity("bold", offset, length))
            elif c == ord("["):
                if src[i + 1] != ord("("):
                    url = src.data[begin + 1:i].decode(errors="replace")
                else:
                    i += 2
                    url_begin = i
                    while i < src.size and src[i] != ord(")"):
                        i += 1
                    url = src.data[url_begin:i].decode(errors="replace")
                checked = checked_link(url)
                if checked is not None:
                    entities.append(_entity("text_link", offset, length, checked))
            elif is_pre:
                entities.append(_entity("pre_code" if language else "pre", offset, length, language))
            else:
                entities.append(_entity("code", offset, length))
        i += 3 if is_pre else 1
    return out.decode("utf-8", errors="replace"), entities


def _public(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities as the Bot API shows them: a code entity's language lives only on pre."""
    return [{k: v for k, v in e.items() if not (k == "language" and e["type"] == "code")} for e in entities]


def _given_entities(raw: str, text: str) -> list[dict[str, Any]]:
    try:
        entities = json.loads(raw)
    except ValueError:
        raise bad_request("can't parse entities JSON object") from None
    if not isinstance(entities, list):
        raise bad_request("can't parse entities: expected an Array of MessageEntity")
    checked: list[dict[str, Any]] = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            raise bad_request("can't parse MessageEntity: field \"type\" must be of type String")
        for name in ("offset", "length"):
            if not isinstance(entity.get(name), int) or isinstance(entity.get(name), bool) or entity[name] < 0:
                raise bad_request(f"can't parse MessageEntity: field \"{name}\" must be a non-negative Integer")
        checked.append(dict(entity))
    size = utf16_len(text)
    return [e for e in checked if e["length"] > 0 and e["offset"] < size]


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading and trailing white space and keeps the entities over what is left."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[:len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(size, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def formatted_text(text: str, parse_mode: str, entities_json: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities of a message's text argument, or the Bot API's refusal."""
    if text == "":
        raise bad_request("message text is empty")
    if len(text.encode("utf-8", errors="replace")) > MAX_RAW_TEXT_BYTES:
        raise bad_request("text is too long")
    mode = parse_mode.strip().lower()
    if mode in ("", "none"):
        plain, entities = text, _given_entities(entities_json, text) if entities_json else []
    elif mode == "html":
        plain, entities = parse_html(text)
    elif mode == "markdownv2":
        plain, entities = parse_markdown_v2(text)
    elif mode == "markdown":
        plain, entities = parse_markdown(text)
    else:
        raise bad_request("unsupported parse_mode")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    plain, entities = _strip(plain, _public(entities))
    if not plain:
        raise bad_request("text must be non-empty")
    return plain, entities


def check_length(text: str) -> None:
    if utf16_len(text) > MAX_TEXT_UTF16:
        raise bad_request("message is too long")


_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,32})?")


def user_entities(text: str) -> list[dict[str, Any]]:
    """What Telegram marks in a person's plain text that bots rely on: bot_command entities."""
    entities = []
    for match in _COMMAND.finditer(text):
        entities.append({"type": "bot_command", "offset": utf16_len(text[:match.start()]),
                         "length": utf16_len(match.group())})
    return entities
