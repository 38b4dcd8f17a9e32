"""``GET /chat``: a web chat with the bot for people trying Durabot offline. One self-contained page (no build
step) over the control API: pick or create a user (and a group), write, see the bot's messages with their
formatting, edits and inline buttons, press buttons and see the answers. Text is only ever put into the
page as text (never as HTML), since it comes from the bot and from people."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

CHAT_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Telegram sim · Durabot</title>
<style>
  :root { --bg: #e7ebf0; --panel: #fff; --mine: #effdde; --bot: #fff; --accent: #3390ec; --muted: #707579; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); }
  .app { display: flex; height: 100vh; }
  aside { width: 280px; background: var(--panel); border-right: 1px solid #dadce0; padding: 12px; overflow-y: auto; }
  aside h2 { font-size: 13px; text-transform: uppercase; color: var(--muted); margin: 16px 0 6px; }
  aside select, aside input { width: 100%; padding: 6px; margin: 2px 0; border: 1px solid #c4c9cc; border-radius: 6px; }
  aside button, .composer button { background: var(--accent); color: #fff; border: 0; border-radius: 6px;
    padding: 7px 12px; cursor: pointer; }
  aside button { width: 100%; margin-top: 4px; }
  main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  header { background: var(--panel); padding: 10px 16px; border-bottom: 1px solid #dadce0; }
  header .title { font-weight: 600; }
  header .status { color: var(--muted); font-size: 13px; min-height: 18px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 6px; }
  .msg { max-width: min(560px, 85%); padding: 6px 10px; border-radius: 12px; background: var(--bot);
    box-shadow: 0 1px 1px rgba(0,0,0,.1); white-space: pre-wrap; word-wrap: break-word; }
  .msg.mine { align-self: flex-end; background: var(--mine); }
  .msg .who { font-size: 13px; font-weight: 600; color: var(--accent); }
  .msg .meta { font-size: 12px; color: var(--muted); text-align: right; }
  .msg .quote { border-left: 3px solid var(--accent); padding-left: 6px; color: var(--muted); font-size: 13px; }
  .msg pre, .msg code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
  .msg pre { background: #f3f4f5; padding: 6px; border-radius: 6px; margin: 4px 0; overflow-x: auto; }
  .msg blockquote { border-left: 3px solid var(--accent); margin: 4px 0; padding-left: 8px; }
  .spoiler { background: #999; color: transparent; border-radius: 3px; cursor: pointer; }
  .spoiler.shown { background: none; color: inherit; }
  .cmd { color: var(--accent); cursor: pointer; }
  .keyboard { display: flex; flex-direction: column; gap: 4px; margin-top: 6px; }
  .keyboard .row { display: flex; gap: 4px; }
  .keyboard button, .keyboard a { flex: 1; background: rgba(51,144,236,.12); color: var(--accent); border: 0;
    border-radius: 8px; padding: 7px; cursor: pointer; font: inherit; text-align: center; text-decoration: none; }
  .keyboard button.waiting { opacity: .6; }
  .keyboard button:disabled { cursor: default; color: var(--muted); }
  .composer { display: flex; gap: 8px; padding: 10px 16px; background: var(--panel); border-top: 1px solid #dadce0; }
  .composer input { flex: 1; padding: 8px; border: 1px solid #c4c9cc; border-radius: 8px; font: inherit; }
  #replyKeyboard { padding: 0 16px 10px; background: var(--panel); }
  #toast { position: fixed; top: 70px; left: 50%; transform: translateX(-50%); background: rgba(0,0,0,.8); color: #fff;
    padding: 8px 14px; border-radius: 8px; display: none; max-width: 80%; }
  .empty { color: var(--muted); text-align: center; margin-top: 40px; }
  label.inline { display: flex; gap: 6px; align-items: center; font-size: 14px; }
  label.inline input { width: auto; }
</style>
</head>
<body>
<div class="app">
  <aside>
    <h2>You are</h2>
    <select id="userSelect" aria-label="user"></select>
    <label class="inline"><input type="checkbox" id="blocked"> blocked the bot</label>
    <h2>New user</h2>
    <input id="newUserId" placeholder="user id, e.g. 1001" inputmode="numeric">
    <input id="newFirstName" placeholder="first name">
    <input id="newUsername" placeholder="username (optional)">
    <button id="createUser">Create user</button>
    <h2>Chat</h2>
    <select id="chatSelect" aria-label="chat"></select>
    <h2>New group</h2>
    <input id="newGroupId" placeholder="group id, negative, e.g. -5001" inputmode="numeric">
    <input id="newGroupTitle" placeholder="title">
    <button id="createGroup">Create group with the bot</button>
    <h2>Bot commands</h2>
    <div id="commands" class="keyboard"></div>
  </aside>
  <main>
    <header><div class="title" id="chatTitle">Telegram sim</div><div class="status" id="status"></div></header>
    <div id="messages"><div class="empty">Create or pick a user to chat with the bot.</div></div>
    <div class="composer">
      <input id="text" placeholder="Write a message… (/start to begin)" autocomplete="off">
      <button id="send">Send</button>
    </div>
    <div id="replyKeyboard" class="keyboard"></div>
  </main>
</div>
<div id="toast" role="status"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const state = { userId: null, chatId: null, users: [], chats: [], rendered: "", waiting: {} };

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const reply = await fetch(path, init);
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function setStatus(text) { $("status").textContent = text; }
function toast(text) {
  const box = $("toast"); box.textContent = text; box.style.display = "block";
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { box.style.display = "none"; }, 3000);
}
function safeUrl(url) { return /^(https?:|tg:)/i.test(url || "") ? url : null; }
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Formatting: entities carry UTF-16 offsets, which is what JavaScript strings index by.
function entityNode(entity) {
  switch (entity.type) {
    case "bold": return el("b");
    case "italic": return el("i");
    case "underline": return el("u");
    case "strikethrough": return el("s");
    case "code": return el("code");
    case "pre": return el("pre");
    case "blockquote": case "expandable_blockquote": return el("blockquote");
    case "spoiler": { const s = el("span", "spoiler"); s.onclick = () => s.classList.add("shown"); return s; }
    case "text_link": {
      const a = el("a"); const href = safeUrl(entity.url);
      if (href) { a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; }
      return a;
    }
    case "bot_command": return el("span", "cmd");
    default: return el("span");
  }
}
function formatted(text, entities) {
  const root = document.createDocumentFragment();
  const list = (entities || []).filter((e) => e.length > 0);
  const cuts = new Set([0, text.length]);
  for (const e of list) { cuts.add(e.offset); cuts.add(Math.min(text.length, e.offset + e.length)); }
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [from, to] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(from, to));
    const covering = list.filter((e) => e.offset <= from && e.offset + e.length >= to);
    for (let k = covering.length - 1; k >= 0; k--) {
      const wrapper = entityNode(covering[k]); wrapper.appendChild(node); node = wrapper;
      if (covering[k].type === "bot_command") {
        const command = text.slice(covering[k].offset, covering[k].offset + covering[k].length);
        wrapper.onclick = () => sendText(command);
      }
    }
    root.appendChild(node);
  }
  return root;
}

function userName(id) {
  const user = state.users.find((u) => u.user_id === id);
  return user ? user.first_name + (user.username ? " @" + user.username : "") : "user " + id;
}

function renderKeyboard(message) {
  const box = el("div", "keyboard");
  for (const row of message.reply_markup.inline_keyboard) {
    const line = el("div", "row");
    for (const button of row) {
      if (button.url) {
        const a = el("a", "", button.text + " ↗"); const href = safeUrl(button.url);
        if (href) { a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; }
        line.appendChild(a);
      } else if (button.callback_data) {
        const b = el("button", "", button.text);
        const key = message.message_id + "|" + button.callback_data;
        if (state.waiting[key]) b.classList.add("waiting");
        b.onclick = () => press(message.message_id, button.callback_data, key);
        line.appendChild(b);
      } else {
        const b = el("button", "", button.text);
        b.disabled = true; b.title = "not a callback button"; line.appendChild(b);
      }
    }
    box.appendChild(line);
  }
  return box;
}

function renderMessages(messages) {
  const key = JSON.stringify([state.chatId, messages, state.waiting]);
  if (key === state.rendered) return;
  state.rendered = key;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren();
  if (!messages.length) box.appendChild(el("div", "empty", "No messages yet. Say /start."));
  const byId = new Map(messages.map((m) => [m.message_id, m]));
  let keyboard = null;
  for (const m of messages) {
    const mine = m.from === state.userId;
    const node = el("div", "msg" + (mine ? " mine" : ""));
    if (!mine) node.appendChild(el("div", "who", m.from === "bot" ? "Bot" : userName(m.from)));
    if (m.reply_to_message_id && byId.has(m.reply_to_message_id)) {
      node.appendChild(el("div", "quote", byId.get(m.reply_to_message_id).text.slice(0, 80)));
    }
    node.appendChild(formatted(m.text, m.entities));
    if (m.reply_markup) node.appendChild(renderKeyboard(m));
    const meta = el("div", "meta", new Date(m.date * 1000).toLocaleTimeString());
    if (m.edits.length) {
      meta.textContent = "edited · " + meta.textContent;
      meta.title = "Earlier versions:\n" + m.edits.join("\n---\n");
    }
    node.appendChild(meta);
    box.appendChild(node);
    if (m.from === "bot" && m.other_markup) keyboard = m.other_markup;
  }
  renderReplyKeyboard(keyboard);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function renderReplyKeyboard(markup) {
  const box = $("replyKeyboard"); box.replaceChildren();
  if (!markup || !markup.keyboard) return;
  for (const row of markup.keyboard) {
    const line = el("div", "row");
    for (const button of row) {
      const text = typeof button === "string" ? button : button.text;
      const b = el("button", "", text); b.onclick = () => sendText(text); line.appendChild(b);
    }
    box.appendChild(line);
  }
}

function fillSelect(select, items, value) {
  const wanted = JSON.stringify(items);
  if (select.dataset.items !== wanted) {
    select.dataset.items = wanted;
    select.replaceChildren(...items.map(([v, label]) => { const o = el("option", "", label); o.value = v; return o; }));
  }
  if (value !== null) select.value = String(value);
}

async function refreshLists() {
  state.users = await api("GET", "/sim/users");
  state.chats = await api("GET", "/sim/chats");
  if (state.userId === null && state.users.length) state.userId = state.users[0].user_id;
  const people = state.users.map((u) => [u.user_id, u.user_id + " · " + userName(u.user_id)]);
  fillSelect($("userSelect"), people, state.userId);
  const chats = [];
  if (state.userId !== null) chats.push([state.userId, "Private chat with the bot"]);
  for (const c of state.chats) if (c.type !== "private") chats.push([c.chat_id, c.title + " (" + c.chat_id + ")"]);
  if (state.chatId === null || !chats.some(([v]) => v === state.chatId)) {
    state.chatId = chats.length ? chats[0][0] : null;
  }
  fillSelect($("chatSelect"), chats, state.chatId);
  const me = state.users.find((u) => u.user_id === state.userId);
  $("blocked").checked = !!(me && me.blocked);
  const commands = await api("GET", "/sim/commands");
  const box = $("commands"); box.replaceChildren();
  const seen = new Set();
  for (const group of commands) for (const c of group.commands) {
    if (seen.has(c.command)) continue; seen.add(c.command);
    const b = el("button", "", "/" + c.command); b.title = c.description; b.onclick = () => sendText("/" + c.command);
    box.appendChild(b);
  }
}

async function refreshChat() {
  if (state.chatId === null) return;
  const chat = await api("GET", "/sim/chats/" + state.chatId);
  $("chatTitle").textContent = chat.type === "private" ? "Bot · private chat of " + userName(chat.chat_id) : chat.title;
  if (chat.action) setStatus("bot is " + chat.action.replace(/_/g, " ") + "…");
  else if ($("status").textContent.startsWith("bot is ")) setStatus("");
  renderMessages(await api("GET", "/sim/chats/" + state.chatId + "/messages"));
  if (Object.keys(state.waiting).length) await checkAnswers();
}

async function checkAnswers() {
  const answers = await api("GET", "/sim/callback_answers");
  for (const [key, pending] of Object.entries(state.waiting)) {
    const answer = answers.find((a) => a.callback_query_id === pending.id);
    if (answer) {
      delete state.waiting[key];
      if (answer.text && answer.show_alert) alert(answer.text);
      else if (answer.text) toast(answer.text);
    } else if (Date.now() - pending.at > 15000) {
      delete state.waiting[key]; toast("The bot did not answer the button press.");
    }
  }
}

async function sendText(text) {
  if (!text.trim() || state.userId === null || state.chatId === null) return;
  try {
    const sent = await api("POST", "/sim/chats/" + state.chatId + "/messages", { user_id: state.userId, text });
    if (sent.update_id === null) setStatus("Sent; the bot does not see it (privacy mode: commands and replies only).");
    await refreshChat();
  } catch (error) { setStatus("Not sent: " + error.message); }
}

async function press(messageId, data, key) {
  try {
    const pressed = await api("POST", "/sim/chats/" + state.chatId + "/callbacks",
                              { user_id: state.userId, message_id: messageId, data });
    state.waiting[key] = { id: pressed.callback_query_id, at: Date.now() };
    await refreshChat();
  } catch (error) { setStatus("Button: " + error.message); }
}

$("send").onclick = () => { const t = $("text").value; $("text").value = ""; sendText(t); };
$("text").addEventListener("keydown", (e) => { if (e.key === "Enter") $("send").onclick(); });
$("userSelect").onchange = (e) => { state.userId = Number(e.target.value); state.chatId = null; tick(); };
$("chatSelect").onchange = (e) => { state.chatId = Number(e.target.value); tick(); };
$("blocked").onchange = async (e) => {
  try { await api("POST", "/sim/users/" + state.userId + "/blocked", { blocked: e.target.checked }); }
  catch (error) { setStatus(error.message); }
};
$("createUser").onclick = async () => {
  const body = { user_id: Number($("newUserId").value), first_name: $("newFirstName").value.trim() };
  if ($("newUsername").value.trim()) body.username = $("newUsername").value.trim();
  try {
    const user = await api("POST", "/sim/users", body);
    state.userId = user.user_id; state.chatId = user.user_id; setStatus("You are " + user.first_name + " now.");
    tick();
  } catch (error) { setStatus("User: " + error.message); }
};
$("createGroup").onclick = async () => {
  const body = { chat_id: Number($("newGroupId").value), title: $("newGroupTitle").value.trim() || null,
                 user_id: state.userId };
  try { const chat = await api("POST", "/sim/chats", body); state.chatId = chat.chat_id; tick(); }
  catch (error) { setStatus("Group: " + error.message); }
};

let busy = false;
async function tick() {
  if (busy) return;
  busy = true;
  try { await refreshLists(); await refreshChat(); }
  catch (error) { setStatus("Sim unreachable: " + error.message); }
  finally { busy = false; }
}
tick();
setInterval(tick, 800);
</script>
</body>
</html>
"""


async def chat_page(request: Request) -> Response:
    return HTMLResponse(CHAT_PAGE, headers={"Cache-Control": "no-store"})
