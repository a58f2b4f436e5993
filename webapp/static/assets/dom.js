// DOM helpers. Everything that comes from the server or from users goes
// into the page as text through these helpers; the only HTML the app
// inserts is a message's server-rendered, sanitized Html (see
// setMessageHtml in app.js).

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h builds an element. attrs values: strings/numbers become attributes,
 * true an empty attribute, false/null/undefined are skipped; keys
 * starting with "on" add event listeners. Children may be nodes, strings
 * (inserted as text), arrays, or null.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v);
      } else if (k === 'class') {
        el.className = v;
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** icon returns an inline SVG that uses a symbol of the sprite in index.html. */
export function icon(name, extraClass) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', `icon icon-${name}${extraClass ? ' ' + extraClass : ''}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** $ finds an element by id; a missing id is a bug in index.html. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el;
}

/** clear removes every child of el. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

/** show toggles the hidden attribute. */
export function show(el, visible) {
  el.hidden = !visible;
}

// ---- names and avatars -------------------------------------------------

/** initials of a display name, at most two letters. */
export function initials(name) {
  const words = String(name || '?').replace(/\(Webhook\)$/, '').trim().split(/[\s._@-]+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0]);
  return (letters.join('') || '?').toUpperCase();
}

/** colorClass picks one of eight avatar colours from an id, stably. */
export function colorClass(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return `c${n % 8}`;
}

/** avatar for a user (initials) or a webhook (the webhook icon). */
export function avatar(id, name, isWebhook, size) {
  const cls = `avatar ${isWebhook ? 'avatar-webhook' : colorClass(id)}${size ? ' avatar-' + size : ''}`;
  return isWebhook ? h('span', { class: cls }, icon('webhook')) : h('span', { class: cls, 'aria-hidden': 'true' }, initials(name));
}

// ---- time ----------------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
const shortFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });

/** timeOf formats a timestamp as the viewer's local clock time. */
export function timeOf(ts) {
  return timeFmt.format(new Date(ts));
}

/** fullTime is the long local date and time, for tooltips. */
export function fullTime(ts) {
  return fullFmt.format(new Date(ts));
}

/** dayKey identifies the viewer's local calendar day of a timestamp. */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** dayLabel is "Today", "Yesterday" or the local date. */
export function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return (d.getFullYear() === today.getFullYear() ? dayFmt : dayYearFmt).format(d);
}

/** relativeTime is "just now", "5 minutes ago" … or a short date. */
export function relativeTime(ts) {
  const secs = (Date.now() - new Date(ts).getTime()) / 1000;
  if (secs < 45) return 'just now';
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (secs < 3600) return rtf.format(-Math.round(secs / 60), 'minute');
  if (secs < 86400) return rtf.format(-Math.round(secs / 3600), 'hour');
  if (secs < 7 * 86400) return rtf.format(-Math.round(secs / 86400), 'day');
  return shortFmt.format(new Date(ts));
}

/** timeEl is a <time> element showing local time with the full date as tooltip. */
export function timeEl(ts, cls, text) {
  return h('time', { class: cls, datetime: ts, title: fullTime(ts) }, text ?? timeOf(ts));
}

// ---- text ----------------------------------------------------------------

const encoder = new TextEncoder();

/** utf8Length is the length of s in bytes of UTF-8, as the server counts it. */
export function utf8Length(s) {
  return encoder.encode(s).length;
}

/** plural: plural(1, 'member') → "1 member", plural(2, 'member') → "2 members". */
export function plural(n, word, many) {
  return `${n.toLocaleString()} ${n === 1 ? word : many || word + 's'}`;
}
