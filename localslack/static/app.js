// lmops dev: the browser side of the local Slack workspace (localslack/web.py).
// Plain JavaScript, no build step. Everything from the server is put into the page with DOM
// APIs (textContent, setAttribute), never as HTML, so message text can't inject markup.
(() => {
  'use strict';

  const S = {
    me: null, bot: null, team: null, users: {}, channels: [], commands: [],
    current: null,            // channel id shown in the main pane
    messages: new Map(),      // channel id -> Map(ts -> message), replies included
    ephemerals: new Map(),    // ts -> ephemeral message (the local user's only)
    thread: null,             // {channel, ts} of the open thread
    dismissed: new Set(), unread: new Set(), hello: false,
    since: '',                // ephemerals from before this page was loaded are gone, as in Slack
  };

  const EMOJI = {
    white_check_mark: '✅', heavy_check_mark: '✔️', hourglass_flowing_sand: '⏳', hourglass: '⌛',
    star: '⭐', no_entry_sign: '🚫', no_entry: '⛔', x: '❌', warning: '⚠️', gear: '⚙️',
    file: '📄', page_facing_up: '📄', thought_balloon: '💭', speech_balloon: '💬', scissors: '✂️',
    grey_question: '❔', question: '❓', thumbsup: '👍', '+1': '👍', thumbsdown: '👎', '-1': '👎',
    tada: '🎉', heart: '❤️', eyes: '👀', joy: '😂', rocket: '🚀', robot_face: '🤖', wave: '👋',
    bulb: '💡', memo: '📝', bar_chart: '📊', chart_with_upwards_trend: '📈',
    chart_with_downwards_trend: '📉', inbox_tray: '📥', outbox_tray: '📤', mag: '🔍',
    information_source: 'ℹ️', stopwatch: '⏱️', fire: '🔥', sparkles: '✨', trophy: '🏆',
    arrows_counterclockwise: '🔄', lock: '🔒', key: '🔑', bust_in_silhouette: '👤',
    busts_in_silhouette: '👥', construction: '🚧', red_circle: '🔴', large_green_circle: '🟢',
    white_circle: '⚪', ok_hand: '👌', pray: '🙏', smile: '😄', slightly_smiling_face: '🙂',
    thinking_face: '🤔', raised_hands: '🙌', clap: '👏', 100: '💯', label: '🏷️', dart: '🎯',
    zap: '⚡', floppy_disk: '💾', package: '📦', link: '🔗', calendar: '📅', books: '📚',
    arrow_right: '➡️', stop_button: '⏹️', black_square_for_stop: '⏹️', skull: '💀',
    card_index_dividers: '🗂️', wastebasket: '🗑️', checkered_flag: '🏁', crown: '👑',
  };
  const QUICK_REACTIONS = ['white_check_mark', 'eyes', 'thumbsup', 'tada'];

  // ---------------------------------------------------------------------------------------
  // helpers

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path, { json, form } = {}) {
    const init = { credentials: 'same-origin', headers: { 'X-Requested-With': 'localslack' } };
    if (json !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.method = 'POST';
      init.body = form;
    }
    try {
      const response = await fetch(path, init);
      try { return await response.json(); } catch (e) {
        // 403: no session (a new run has a new secret): open the URL that lmops dev printed
        return { ok: false, error: response.status === 403 ? 'forbidden: open the URL that lmops dev printed' : `http_${response.status}` };
      }
    } catch (e) {
      return { ok: false, error: 'server_unreachable' };
    }
  }

  function toast(text, error = false) {
    const node = $('#toast');
    node.textContent = text;
    node.className = error ? 'toast error' : 'toast';
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, error ? 6000 : 2500);
  }

  function tsCompare(a, b) {
    const [ai, af = ''] = String(a).split('.');
    const [bi, bf = ''] = String(b).split('.');
    if (ai.length !== bi.length) return ai.length - bi.length;
    if (ai !== bi) return ai < bi ? -1 : 1;
    const x = af.padEnd(6, '0'), y = bf.padEnd(6, '0');
    return x < y ? -1 : x > y ? 1 : 0;
  }

  function timeOf(ts) {
    const date = new Date(parseFloat(ts) * 1000);
    return { short: date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), long: date.toLocaleString() };
  }

  function decode(text) {
    return String(text).replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  }

  function emojify(text) {
    return String(text).replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);
  }

  function safeUrl(url) {
    const value = String(url || '').trim();
    return /^(https?:|mailto:)/i.test(value) ? value : null;
  }

  function userName(id) {
    const user = S.users[id];
    return user ? user.name : id;
  }

  function channelLabel(channel) {
    if (!channel) return '';
    if (channel.is_im) return userName(channel.user === S.me ? S.bot : channel.user);
    return `#${channel.name}`;
  }

  // ---------------------------------------------------------------------------------------
  // mrkdwn: ```blocks```, `code`, *bold*, _italic_, ~strike~, <links>, <@mentions>, > quotes

  const INLINE = /`([^`\n]+)`|<([^<>\n]+)>|(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])|(^|[^\w_])_(?!\s)([^_\n]+?)_(?![\w_])|(^|[^\w~])~(?!\s)([^~\n]+?)~(?![\w~])/g;

  function textNode(text) {
    return document.createTextNode(emojify(decode(text)));
  }

  function special(body) {
    const bar = body.indexOf('|');
    const target = bar < 0 ? body : body.slice(0, bar);
    const label = bar < 0 ? '' : body.slice(bar + 1);
    if (target.startsWith('@')) {
      const id = target.slice(1);
      const known = S.users[id];
      return el('span', { class: id === S.me ? 'mention me' : 'mention', title: id },
        '@' + (known ? known.name : decode(label || id)));
    }
    if (target.startsWith('#')) {
      const found = S.channels.find((c) => c.id === target.slice(1));
      return el('span', { class: 'mention' }, '#' + (found ? found.name : decode(label || target.slice(1))));
    }
    if (target.startsWith('!')) {
      const word = target.slice(1).split('^')[0];
      const text = label ? decode(label) : `@${word}`;
      return el('span', { class: ['here', 'channel', 'everyone'].includes(word) ? 'mention me' : '' }, text);
    }
    const url = safeUrl(decode(target));
    const text = decode(label || target);
    if (!url) return document.createTextNode(text);
    return el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, emojify(text));
  }

  function inline(text) {
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(INLINE)) {  // matchAll copies the regex: safe to recurse
      if (m.index > last) frag.append(textNode(text.slice(last, m.index)));
      if (m[1] !== undefined) frag.append(el('code', {}, decode(m[1])));
      else if (m[2] !== undefined) frag.append(special(m[2]));
      else {
        const [prefix, inner, tag] = m[4] !== undefined ? [m[3], m[4], 'strong']
          : m[6] !== undefined ? [m[5], m[6], 'em'] : [m[7], m[8], 's'];
        if (prefix) frag.append(textNode(prefix));
        frag.append(el(tag, {}, inline(inner)));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.append(textNode(text.slice(last)));
    return frag;
  }

  function lines(text) {
    const frag = document.createDocumentFragment();
    let quote = null;
    text.split('\n').forEach((line, i) => {
      const m = /^(?:&gt;|>)\s?(.*)$/.exec(line);
      if (m) {
        if (!quote) { quote = el('blockquote'); frag.append(quote); } else quote.append(el('br'));
        quote.append(inline(m[1]));
        return;
      }
      if (i > 0 && !quote) frag.append(el('br'));
      quote = null;
      frag.append(inline(line));
    });
    return frag;
  }

  function mrkdwn(text) {
    const frag = document.createDocumentFragment();
    const parts = String(text || '').split('```');
    parts.forEach((part, i) => {
      if (i % 2 === 1 && i < parts.length - 1) {
        frag.append(el('pre', { class: 'code-block' }, decode(part.replace(/^\n/, '').replace(/\n$/, ''))));
      } else {
        const rest = i % 2 === 1 ? '```' + part : i > 0 ? part.replace(/^\n/, '') : part;
        frag.append(lines(rest));
      }
    });
    return frag;
  }

  function textObject(obj) {
    if (!obj) return null;
    if (obj.type === 'mrkdwn') return mrkdwn(obj.text);
    return document.createTextNode(obj.emoji === false ? String(obj.text || '') : emojify(obj.text || ''));
  }

  // ---------------------------------------------------------------------------------------
  // Block Kit

  function fileUrl(url) {
    // a file of this workspace (files-pri URL) is fetched with the page's session, not a token
    const m = /\/files-pri\/[^/]+-([A-Z0-9_]+)\/(?:download\/)?([^/?#]+)/.exec(String(url || ''));
    if (m) return `/web/files/${encodeURIComponent(m[1])}/${m[2]}`;
    return safeUrl(url);
  }

  function imageSrc(block) {
    if (block.slack_file) {
      if (block.slack_file.id) return `/web/files/${encodeURIComponent(block.slack_file.id)}`;
      return fileUrl(block.slack_file.url);
    }
    return fileUrl(block.image_url);
  }

  function image(src, alt, cls) {
    if (!src) return el('span', { class: 'unsupported' }, `[image: ${alt || 'not available'}]`);
    const img = el('img', { src, alt: alt || '', class: cls, loading: 'lazy' });
    img.addEventListener('load', () => keepBottom(img));
    return img;
  }

  function button(element, msg, blockId) {
    const node = el('button', {
      type: 'button', class: `btn ${element.style || ''}`.trim(),
      dataset: { actionId: element.action_id || '' },
    }, textObject(element.text));
    node.addEventListener('click', async () => {
      if (element.confirm && !(await confirmDialog(element.confirm))) return;
      const url = safeUrl(element.url);
      if (url) window.open(url, '_blank', 'noopener');
      node.disabled = true;
      const result = await api('/web/action', {
        json: { channel: msg.channel, message_ts: msg.ts, action_id: element.action_id,
                value: element.value ?? null, block_id: blockId || null },
      });
      setTimeout(() => { node.disabled = false; }, 800);
      if (!result.ok) systemNote(msg.channel, `That didn't work: the app answered "${result.error}".`, msg.thread_ts);
    });
    return node;
  }

  function element(elem, msg, blockId) {
    if (elem.type === 'button') return button(elem, msg, blockId);
    if (elem.type === 'image') return image(fileUrl(elem.image_url), elem.alt_text, '');
    if (elem.type === 'mrkdwn' || elem.type === 'plain_text') return el('span', {}, textObject(elem));
    return el('span', { class: 'unsupported' }, `[${elem.type}]`);
  }

  function richText(block) {
    const styled = (item) => {
      let node;
      if (item.type === 'link') node = special(`${item.url}|${item.text || item.url}`.replace(/</g, '&lt;'));
      else if (item.type === 'user') node = special(`@${item.user_id}`);
      else if (item.type === 'channel') node = special(`#${item.channel_id}`);
      else if (item.type === 'emoji') node = document.createTextNode(EMOJI[item.name] || `:${item.name}:`);
      else node = document.createTextNode(item.text || '');
      const style = item.style || {};
      if (style.code) node = el('code', {}, node);
      if (style.bold) node = el('strong', {}, node);
      if (style.italic) node = el('em', {}, node);
      if (style.strike) node = el('s', {}, node);
      return node;
    };
    const section = (s) => {
      const items = (s.elements || []).map(styled);
      if (s.type === 'rich_text_preformatted') return el('pre', { class: 'code-block' }, items);
      if (s.type === 'rich_text_quote') return el('blockquote', {}, items);
      if (s.type === 'rich_text_list') {
        return el(s.style === 'ordered' ? 'ol' : 'ul', {}, (s.elements || []).map((e) => el('li', {}, section(e))));
      }
      return el('span', { class: 'rt-section' }, items);
    };
    return el('div', { class: 'block-text' }, (block.elements || []).map(section));
  }

  function block(b, msg) {
    switch (b.type) {
      case 'section': {
        const main = el('div', { class: 'section-main' },
          b.text ? el('div', { class: 'block-text' }, textObject(b.text)) : null,
          b.fields ? el('div', { class: 'fields' }, b.fields.map((f) => el('div', { class: 'field block-text' }, textObject(f)))) : null);
        const acc = b.accessory;
        const side = !acc ? null : acc.type === 'image' ? image(fileUrl(acc.image_url), acc.alt_text, 'accessory-img')
          : element(acc, msg, b.block_id);
        return el('div', { class: 'block-section' }, main, side);
      }
      case 'context':
        return el('div', { class: 'block-context' }, (b.elements || []).map((e) => element(e, msg, b.block_id)));
      case 'image':
        return el('div', { class: 'block-image' },
          b.title ? el('div', { class: 'image-title' }, textObject(b.title)) : null,
          image(imageSrc(b), b.alt_text, ''));
      case 'divider':
        return el('hr', { class: 'block-divider' });
      case 'header':
        return el('div', { class: 'block-header' }, textObject(b.text));
      case 'actions':
        return el('div', { class: 'block-actions' }, (b.elements || []).map((e) => element(e, msg, b.block_id)));
      case 'rich_text':
        return richText(b);
      case 'markdown':
        return el('div', { class: 'block-text' }, mrkdwn(b.text));
      default:
        return el('div', { class: 'unsupported' }, `[${b.type} block]`);
    }
  }

  function attachments(list, msg) {
    return (list || []).map((a) => {
      const node = el('div', { class: 'attachment' },
        a.title ? el('strong', {}, emojify(a.title)) : null,
        a.text ? el('div', { class: 'block-text' }, mrkdwn(a.text)) : null,
        a.fields ? el('div', { class: 'fields' }, a.fields.map((f) => el('div', { class: 'field block-text' },
          el('strong', {}, f.title || ''), el('br'), mrkdwn(f.value || '')))) : null,
        a.blocks ? el('div', { class: 'blocks' }, a.blocks.map((b) => block(b, msg))) : null);
      if (/^#[0-9a-f]{3,8}$/i.test(a.color || '')) node.style.borderLeftColor = a.color;
      else if (a.color === 'good') node.style.borderLeftColor = '#2eb67d';
      else if (a.color === 'danger') node.style.borderLeftColor = '#e01e5a';
      return node;
    });
  }

  function sizeText(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  }

  function files(list) {
    return el('div', { class: 'files' }, (list || []).map((f) => {
      if (/^image\/(png|jpeg|gif|webp)$/.test(f.mimetype || '')) {
        return el('div', { class: 'file-image' },
          el('div', { class: 'file-title' }, f.title || f.name),
          el('a', { href: f.web_url, target: '_blank', rel: 'noopener' }, image(f.web_url, f.alt_txt || f.title || f.name, '')));
      }
      return el('a', { class: 'file-card', href: f.web_url, download: f.name },
        el('span', { class: 'file-icon' }, (f.filetype || 'file').slice(0, 4).toUpperCase()),
        el('span', { class: 'file-meta' }, el('span', { class: 'file-name' }, f.title || f.name),
          el('span', { class: 'file-size' }, `${(f.pretty_type || f.filetype || '').toUpperCase()} · ${sizeText(f.size || 0)}`)));
    }));
  }

  // ---------------------------------------------------------------------------------------
  // messages

  function author(msg) {
    if (msg.local) return { name: 'Slackbot', avatar: 'sb', cls: 'slackbot', app: false };
    // an ephemeral message's `user` is who sees it; its author is the app
    const user = S.users[msg.is_ephemeral && msg.bot_id ? S.bot : msg.user];
    const isBot = Boolean(msg.bot_id) || Boolean(user && user.is_bot);
    const name = msg.username || (user ? (user.real_name || user.name) : (isBot ? 'lmops' : msg.user || 'someone'));
    return { name, avatar: isBot ? 'lm' : name.slice(0, 1).toUpperCase(), cls: isBot ? 'bot' : '', app: isBot };
  }

  function reactionBar(msg) {
    if (msg.is_ephemeral || !(msg.reactions || []).length) return null;
    return el('div', { class: 'reactions' }, msg.reactions.map((r) => el('button', {
      type: 'button', class: (r.users || []).includes(S.me) ? 'reaction mine' : 'reaction',
      title: `:${r.name}: by ${(r.users || []).map(userName).join(', ')}`,
      onclick: () => react(msg, r.name),
    }, `${EMOJI[r.name] || `:${r.name}:`} ${r.count || (r.users || []).length}`)));
  }

  function tools(msg, where) {
    if (msg.is_ephemeral) return null;
    return el('div', { class: 'tools' },
      QUICK_REACTIONS.map((name) => el('button', { type: 'button', title: `React with :${name}:`, onclick: () => react(msg, name) }, EMOJI[name])),
      where === 'main' ? el('button', { type: 'button', title: 'Reply in thread', onclick: () => openThread(msg.channel, msg.ts) }, '💬') : null);
  }

  function renderMessage(msg, where) {
    const who = author(msg);
    const time = timeOf(msg.ts);
    const content = [];
    if (msg.blocks && msg.blocks.length) content.push(el('div', { class: 'blocks' }, msg.blocks.map((b) => block(b, msg))));
    else if (msg.text) content.push(el('div', { class: 'text' }, mrkdwn(msg.text)));
    const body = el('div', { class: 'msg-body' },
      msg.is_ephemeral ? el('div', { class: 'ephemeral-note' }, '👁 Only visible to you',
        el('button', { type: 'button', class: 'dismiss', onclick: () => dismiss(msg) }, 'Dismiss')) : null,
      el('div', { class: 'msg-head' },
        el('span', { class: 'name' }, who.name),
        who.app ? el('span', { class: 'app-tag' }, 'APP') : null,
        el('span', { class: 'time', title: time.long }, time.short)),
      content,
      msg.streaming ? el('span', { class: 'cursor', 'aria-label': 'still writing' }) : null,
      msg.edited ? el('span', { class: 'edited' }, '(edited)') : null,
      attachments(msg.attachments, msg),
      msg.files && msg.files.length ? files(msg.files) : null,
      reactionBar(msg),
      where === 'main' && msg.reply_count ? el('button', {
        type: 'button', class: 'replies', onclick: () => openThread(msg.channel, msg.ts),
      }, `${msg.reply_count} ${msg.reply_count === 1 ? 'reply' : 'replies'}`,
      msg.latest_reply ? el('span', { class: 'last' }, `Last reply ${timeOf(msg.latest_reply).short}`) : null) : null);
    return el('div', {
      class: `msg${msg.is_ephemeral ? ' ephemeral' : ''}`,
      dataset: { ts: msg.ts, channel: msg.channel, user: msg.user || '' },
    }, el('div', { class: `avatar ${who.cls}`, 'aria-hidden': 'true' }, who.avatar), body, tools(msg, where));
  }

  function inMain(msg) {
    if (msg.is_ephemeral) return !msg.thread_ts;
    return !msg.thread_ts || msg.thread_ts === msg.ts || msg.reply_broadcast;
  }

  function inThread(msg, thread) {
    if (!thread || msg.channel !== thread.channel) return false;
    return msg.ts === thread.ts || msg.thread_ts === thread.ts;
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function keepBottom(node) {
    const box = node.closest('.messages');
    if (box && box.dataset.stick === '1') box.scrollTop = box.scrollHeight;
  }

  function place(box, msg, where) {
    const stick = nearBottom(box);
    const node = renderMessage(msg, where);
    const old = box.querySelector(`.msg[data-ts="${CSS.escape(msg.ts)}"]`);
    if (old) old.replaceWith(node);
    else {
      const after = [...box.querySelectorAll('.msg')].find((n) => tsCompare(n.dataset.ts, msg.ts) > 0);
      box.insertBefore(node, after || null);
      box.querySelector('.empty')?.remove();
    }
    if (where === 'thread' && msg.ts === S.thread?.ts) node.classList.add('thread-root');
    box.dataset.stick = stick ? '1' : '';
    if (stick || (!old && msg.user === S.me)) box.scrollTop = box.scrollHeight;
    return node;
  }

  function store(msg) {
    if (msg.is_ephemeral) { S.ephemerals.set(msg.ts, msg); return; }
    if (!S.messages.has(msg.channel)) S.messages.set(msg.channel, new Map());
    S.messages.get(msg.channel).set(msg.ts, msg);
  }

  function show(msg, fresh) {
    if (S.dismissed.has(msg.ts)) return;
    if (msg.channel === S.current && inMain(msg)) {
      const node = place($('#messages'), msg, 'main');
      if (fresh && msg.user !== S.me) node.classList.add('flash');
    } else if (fresh && inMain(msg) && !msg.is_ephemeral) {
      S.unread.add(msg.channel);
      renderSidebar();
    }
    if (inThread(msg, S.thread)) place($('#thread-messages'), msg, 'thread');
  }

  function remove(channel, ts) {
    S.messages.get(channel)?.delete(ts);
    S.ephemerals.delete(ts);
    document.querySelectorAll(`.msg[data-ts="${CSS.escape(ts)}"]`).forEach((n) => n.remove());
  }

  function dismiss(msg) {
    S.dismissed.add(msg.ts);
    remove(msg.channel, msg.ts);
  }

  function systemNote(channel, text, threadTs) {
    const now = Date.now() / 1000;
    const msg = { type: 'message', ts: now.toFixed(6), channel, text, is_ephemeral: true, local: true,
                  thread_ts: threadTs || undefined };
    store(msg);
    show(msg, true);
  }

  // ---------------------------------------------------------------------------------------
  // conversations and threads

  function renderSidebar() {
    const item = (c, label, icon) => el('li', {}, el('a', {
      href: `#${c.id}`, class: [c.id === S.current ? 'active' : '', S.unread.has(c.id) ? 'unread' : ''].join(' ').trim(),
      dataset: { channel: c.id }, onclick: (e) => { e.preventDefault(); selectChannel(c.id); },
    }, icon, label));
    $('#channel-list').replaceChildren(...S.channels.filter((c) => !c.is_im)
      .map((c) => item(c, c.name, el('span', { class: 'hash' }, c.is_private ? '🔒' : '#'))));
    $('#dm-list').replaceChildren(...S.channels.filter((c) => c.is_im)
      .map((c) => item(c, channelLabel(c), el('span', { class: 'dot' }))));
  }

  async function selectChannel(id) {
    S.current = id;
    S.unread.delete(id);
    history.replaceState(null, '', `#${id}`);
    const channel = S.channels.find((c) => c.id === id);
    $('#channel-title').textContent = channelLabel(channel);
    $('#channel-topic').textContent = channel && channel.is_im ? 'the lmops bot' : (channel?.topic || '');
    $('#composer textarea').placeholder = `Message ${channelLabel(channel)}`;
    renderSidebar();
    const data = await api(`/web/history?channel=${encodeURIComponent(id)}&since=${encodeURIComponent(S.since)}`);
    if (S.current !== id) return;
    const box = $('#messages');
    box.replaceChildren();
    if (!data.ok) { box.append(el('div', { class: 'empty' }, `Could not load: ${data.error}`)); return; }
    for (const msg of data.messages) store(msg);
    for (const msg of data.ephemerals) store(msg);
    const all = [...data.messages, ...data.ephemerals].filter((m) => !S.dismissed.has(m.ts))
      .sort((a, b) => tsCompare(a.ts, b.ts));
    if (!all.length) {
      box.append(el('div', { class: 'empty' }, `This is the very beginning of ${channelLabel(channel)}. Try `,
        el('code', {}, '/lm help'), ' or drop a CSV file here.'));
    }
    for (const msg of all) box.append(renderMessage(msg, 'main'));
    box.scrollTop = box.scrollHeight;
    box.dataset.stick = '1';
  }

  async function openThread(channel, ts) {
    S.thread = { channel, ts };
    $('#thread').hidden = false;
    $('#thread-channel').textContent = channelLabel(S.channels.find((c) => c.id === channel));
    const data = await api(`/web/replies?channel=${encodeURIComponent(channel)}&ts=${encodeURIComponent(ts)}&since=${encodeURIComponent(S.since)}`);
    if (S.thread?.ts !== ts) return;
    const box = $('#thread-messages');
    box.replaceChildren();
    if (!data.ok) { box.append(el('div', { class: 'empty' }, `Could not load the thread: ${data.error}`)); return; }
    S.thread.ts = data.thread_ts;
    for (const msg of [...data.messages, ...data.ephemerals]) store(msg);
    const all = [...data.messages, ...data.ephemerals].filter((m) => !S.dismissed.has(m.ts))
      .sort((a, b) => tsCompare(a.ts, b.ts));
    all.forEach((msg, i) => {
      const node = renderMessage(msg, 'thread');
      if (i === 0) node.classList.add('thread-root');
      box.append(node);
    });
    box.scrollTop = box.scrollHeight;
    box.dataset.stick = '1';
    $('#thread-composer textarea').focus();
  }

  function closeThread() {
    S.thread = null;
    $('#thread').hidden = true;
    $('#thread-messages').replaceChildren();
  }

  async function react(msg, name) {
    const result = await api('/web/reaction', { json: { channel: msg.channel, ts: msg.ts, name } });
    if (!result.ok) toast(`Reaction failed: ${result.error}`, true);
  }

  // ---------------------------------------------------------------------------------------
  // composing: messages, /lm with completion, uploads

  function subcommands() {
    return (S.commands.find((c) => c.command === '/lm') || { subcommands: [] }).subcommands;
  }

  function suggestions(text) {
    let m = /^\/(\S*)$/.exec(text);
    if (m) {
      return S.commands.filter((c) => c.command.startsWith(`/${m[1]}`))
        .map((c) => ({ usage: c.command, insert: `${c.command} `, desc: 'lmops: classify, chat, fine-tune, evaluate…' }));
    }
    m = /^\/lm\s+(\S*)$/.exec(text);
    if (m) {
      return subcommands().filter((s) => s.name.startsWith(m[1].toLowerCase()))
        .map((s) => ({ usage: `/lm ${s.usage}`, insert: `/lm ${s.name} `, desc: s.description }));
    }
    return [];
  }

  function setupComposer(form, threadOf) {
    const area = $('textarea', form);
    const list = $('.completions', form);
    const hint = $('.hint', form);
    const defaultHint = hint ? [...hint.childNodes].map((n) => n.cloneNode(true)) : [];
    let items = [], selected = 0;

    const resize = () => { area.style.height = 'auto'; area.style.height = `${Math.min(area.scrollHeight, 200)}px`; };
    const close = () => { list.hidden = true; items = []; };
    const accept = (i) => { area.value = items[i].insert; close(); update(); area.focus(); };
    const drawList = () => {
      list.replaceChildren(el('div', { class: 'completion-head' }, 'Commands matching'),
        ...items.map((item, i) => el('div', {
          class: i === selected ? 'completion selected' : 'completion', role: 'option',
          onmousedown: (e) => { e.preventDefault(); accept(i); },
        }, el('span', { class: 'usage' }, item.usage), el('span', { class: 'desc' }, item.desc))));
      list.hidden = false;
      list.querySelector('.selected')?.scrollIntoView({ block: 'nearest' });
    };
    const update = () => {
      resize();
      items = suggestions(area.value);
      selected = Math.min(selected, Math.max(items.length - 1, 0));
      if (items.length) drawList(); else close();
      if (!hint) return;
      const m = /^\/lm\s+([\w-]+)\s/.exec(area.value);
      const sub = m && subcommands().find((s) => s.name === m[1].toLowerCase());
      if (sub) hint.replaceChildren('usage: ', el('code', {}, `/lm ${sub.usage}`), ` — ${sub.description}`);
      else hint.replaceChildren(...defaultHint.map((n) => n.cloneNode(true)));
    };

    area.addEventListener('input', () => { selected = 0; update(); });
    area.addEventListener('blur', () => setTimeout(close, 150));
    area.addEventListener('keydown', (e) => {
      if (!list.hidden && items.length) {
        if (e.key === 'ArrowDown') { e.preventDefault(); selected = (selected + 1) % items.length; drawList(); return; }
        if (e.key === 'ArrowUp') { e.preventDefault(); selected = (selected + items.length - 1) % items.length; drawList(); return; }
        if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && area.value.trim() !== items[selected].insert.trim())) {
          e.preventDefault(); accept(selected); return;
        }
        if (e.key === 'Escape') { close(); return; }
      }
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = area.value;
      if (!text.trim()) return;
      const thread = threadOf();
      const channel = thread ? thread.channel : S.current;
      area.value = '';
      update();
      const result = await api('/web/message', { json: { channel, text, thread_ts: thread ? thread.ts : null } });
      if (!result.ok) {
        const command = text.trim().split(/\s/)[0];
        systemNote(channel, result.message || (text.startsWith('/')
          ? `${command} failed with the error "${result.error}"` : `Your message was not delivered to the app: ${result.error}`),
        thread && !text.startsWith('/') ? thread.ts : null);
      }
    });
    const input = $('.file-input', form);
    $('.attach', form).addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      const thread = threadOf();
      upload(input.files, thread ? thread.channel : S.current, thread ? thread.ts : null);
      input.value = '';
    });
  }

  async function upload(fileList, channel, threadTs) {
    const list = [...(fileList || [])];
    if (!list.length || !channel) return;
    const form = new FormData();
    form.append('channel', channel);
    if (threadTs) form.append('thread_ts', threadTs);
    for (const file of list) form.append('file', file, file.name);
    toast(`Uploading ${list.map((f) => f.name).join(', ')}…`);
    const result = await api('/web/upload', { form });
    if (!result.ok) toast(`Upload failed: ${result.error}`, true);
  }

  function setupDrop() {
    const overlay = $('#drop-overlay');
    let depth = 0;
    const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    window.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth += 1; overlay.hidden = false; } });
    window.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
    window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
    window.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      overlay.hidden = true;
      const intoThread = S.thread && e.target instanceof Element && e.target.closest('#thread');
      upload(e.dataTransfer.files, intoThread ? S.thread.channel : S.current, intoThread ? S.thread.ts : null);
    });
  }

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const modal = $('#modal');
      $('#modal-title').replaceChildren(textObject(confirm.title) || 'Are you sure?');
      $('#modal-text').replaceChildren(textObject(confirm.text) || '');
      const yes = $('#modal-confirm'), no = $('#modal-deny');
      yes.replaceChildren(textObject(confirm.confirm) || 'Confirm');
      no.replaceChildren(textObject(confirm.deny) || 'Cancel');
      yes.className = confirm.style === 'danger' ? 'btn danger' : 'btn primary';
      const done = (answer) => { modal.hidden = true; yes.onclick = no.onclick = null; resolve(answer); };
      yes.onclick = () => done(true);
      no.onclick = () => done(false);
      modal.hidden = false;
      yes.focus();
    });
  }

  // ---------------------------------------------------------------------------------------
  // live updates (Server-Sent Events)

  function connect() {
    const source = new EventSource('/web/stream');
    source.onopen = () => $('#conn').classList.add('live');
    source.onerror = () => $('#conn').classList.remove('live');
    source.onmessage = (e) => {
      const event = JSON.parse(e.data);
      if (event.type === 'hello') {
        if (S.hello) { selectChannel(S.current); if (S.thread) openThread(S.thread.channel, S.thread.ts); }
        S.hello = true;
      } else if (event.type === 'message') {
        const known = event.message.is_ephemeral ? S.ephemerals.has(event.message.ts)
          : S.messages.get(event.message.channel)?.has(event.message.ts);
        store(event.message);
        show(event.message, !known);
      } else if (event.type === 'deleted') {
        remove(event.channel, event.ts);
      }
    };
  }

  async function start() {
    const data = await api('/web/bootstrap');
    if (!data.ok) {
      document.body.replaceChildren(el('p', { class: 'empty' }, `This workspace could not be loaded (${data.error}). Reload the page.`));
      return;
    }
    Object.assign(S, { me: data.me, bot: data.bot_user_id, team: data.team, users: data.users,
                       channels: data.channels, commands: data.commands, since: data.since || '' });
    $('#team-name').textContent = data.team.name;
    $('#me-name').textContent = (S.users[S.me] || {}).real_name || 'you';
    setupComposer($('#composer'), () => null);
    setupComposer($('#thread-composer'), () => S.thread);
    setupDrop();
    $('#thread-close').addEventListener('click', closeThread);
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('#modal').hidden) $('#modal-deny').click(); });
    const wanted = location.hash.slice(1);
    const first = S.channels.find((c) => c.id === wanted) || S.channels.find((c) => c.name === 'general') || S.channels[0];
    connect();
    if (first) await selectChannel(first.id);
    $('#composer textarea').focus();
    document.body.dataset.ready = '1';
  }

  // exposed for tests in the browser console
  window.lmopsDev = { mrkdwn, state: S };
  start();
})();
