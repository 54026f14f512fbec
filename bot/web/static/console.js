// The counsellors' console: live queue, inbox, chat and wallboard over server-sent events.
// Plain JavaScript, no build step, nothing loaded from elsewhere. Every page works without it.
//
// Live updates carry the same markup the server drew first; `morph` patches it into the page
// in place, so a refresh never destroys the element that has the focus (WCAG 2.2: a live
// queue must not throw a keyboard user back to the top).
"use strict";

(function () {
  document.documentElement.classList.add("js");
  const body = document.body;
  const csrf = body.dataset.csrf || "";
  const textsNode = document.getElementById("console-texts");
  const texts = textsNode ? textsNode.dataset : {};
  const baseTitle = document.title;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (all, key) {
      return key in values ? String(values[key]) : all;
    });
  }

  function minutesSince(iso) {
    return Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 60000));
  }

  // ------------------------------------------------------------------ patching in place
  function keyOf(node) {
    return node.nodeType === 1 ? node.getAttribute("data-key") : null;
  }

  function syncAttributes(from, to) {
    for (const attr of Array.from(from.attributes)) {
      if (!to.hasAttribute(attr.name)) from.removeAttribute(attr.name);
    }
    for (const attr of Array.from(to.attributes)) {
      if (from.getAttribute(attr.name) !== attr.value) from.setAttribute(attr.name, attr.value);
    }
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && (a.nodeType !== 1 || a.tagName === b.tagName);
  }

  // Make `target`'s children look like `source`'s, reusing nodes: keyed children (data-key)
  // by key, others by position. Nodes that stay are never removed, so focus stays too.
  function morphChildren(target, source) {
    const byKey = new Map();
    for (const child of Array.from(target.childNodes)) {
      const key = keyOf(child);
      if (key) byKey.set(key, child);
    }
    let cursor = target.firstChild;
    for (const fresh of Array.from(source.childNodes)) {
      const key = keyOf(fresh);
      let match = null;
      if (key) {
        const old = byKey.get(key);
        if (old && sameKind(old, fresh)) { match = old; byKey.delete(key); }
      } else if (cursor && !keyOf(cursor) && sameKind(cursor, fresh)) {
        match = cursor;
      }
      if (match) {
        if (match === cursor) cursor = cursor.nextSibling;
        else target.insertBefore(match, cursor);
        morph(match, fresh);
      } else {
        target.insertBefore(fresh, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      target.removeChild(cursor);
      cursor = next;
    }
  }

  function morph(target, source) {
    if (target.nodeType !== 1) {
      if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue;
      return;
    }
    if (target.isEqualNode(source)) return;
    syncAttributes(target, source);
    morphChildren(target, source);
  }

  function patch(container, html) {
    if (!container) return;
    const focused = document.activeElement;
    const template = document.createElement("template");
    template.innerHTML = html;
    morphChildren(container, template.content);
    // Should the focused element have moved (a reordered row), give it its focus back.
    if (focused && focused !== document.activeElement && focused.isConnected) focused.focus();
  }

  // ------------------------------------------------------------------ announcements
  const announcer = document.getElementById("announcer");
  let toAnnounce = [];
  function announce(text) {
    if (!announcer || !text) return;
    // Said together: what one refresh announces (a new case and its alarm), none lost.
    if (!toAnnounce.length) {
      announcer.textContent = "";
      // A fresh text node after a tick is announced even when the words repeat.
      setTimeout(function () {
        announcer.textContent = toAnnounce.join(" ");
        toAnnounce = [];
      }, 50);
    }
    toAnnounce.push(text);
  }

  // ------------------------------------------------------------------ the alarm
  // Rings once for each critical case this counsellor has not seen yet; shows itself on the
  // page and in the tab title until the case is opened or marked seen, whether or not the
  // browser let the sound play.
  const alarm = (function () {
    const banner = document.getElementById("alarm");
    if (!banner) return null;
    const toggle = document.getElementById("sound-toggle");
    const bannerText = document.getElementById("alarm-text");
    const bannerCases = document.getElementById("alarm-cases");
    const blockedNote = document.getElementById("alarm-sound");
    const audio = new Audio("/sound/alert.wav");
    const store = window.localStorage;
    let soundOn = store.getItem("helpline-sound") !== "off";
    let blocked = false;
    let pending = [];
    let unread = 0;
    window.helplineAlerts = 0;
    window.helplineRings = 0;

    function load(name) {
      try { return new Set(JSON.parse(store.getItem(name) || "[]")); } catch (e) { return new Set(); }
    }
    function save(name, set) { store.setItem(name, JSON.stringify(Array.from(set).slice(-200))); }

    function showSound() {
      toggle.hidden = false;
      toggle.textContent = blocked && soundOn ? texts.soundBlocked
        : soundOn ? texts.soundOn : texts.soundOff;
      toggle.setAttribute("aria-pressed", soundOn ? "true" : "false");
      toggle.classList.toggle("blocked", blocked && soundOn);
    }

    function title() {
      let prefix = "";
      if (pending.length) prefix = fill(texts.alarmTitle, { n: pending.length }) + " · ";
      else if (unread) prefix = fill(texts.unreadTitle, { n: unread }) + " · ";
      document.title = prefix + baseTitle;
    }

    function show() {
      banner.hidden = pending.length === 0;
      body.classList.toggle("alarm", pending.length > 0);
      bannerText.textContent = fill(texts.alarm, { n: pending.length });
      bannerCases.replaceChildren(...pending.map(function (id) {
        return el("a", { href: "/cases/" + id, text: fill(texts.caseLink, { id: id }) });
      }));
      blockedNote.hidden = !(blocked && soundOn && pending.length);
      title();
    }

    function ring() {
      window.helplineRings += 1;
      if (!soundOn) return;
      const played = audio.play();
      if (played && played.then) {
        played.then(function () { blocked = false; showSound(); show(); }, function () {
          // Autoplay refused until the counsellor interacts with the page: say so.
          blocked = true;
          showSound();
          show();
        });
      }
    }

    toggle.addEventListener("click", function () {
      if (blocked && soundOn) {
        // A click is the gesture the browser wanted: try again now.
        audio.play().then(function () { blocked = false; showSound(); show(); },
                          function () { /* still blocked */ });
        return;
      }
      soundOn = !soundOn;
      store.setItem("helpline-sound", soundOn ? "on" : "off");
      showSound();
      show();
    });
    document.getElementById("alarm-seen").addEventListener("click", function () {
      const seen = load("helpline-seen-critical");
      pending.forEach(function (id) { seen.add(id); });
      save("helpline-seen-critical", seen);
      pending = [];
      show();
    });
    showSound();

    return {
      // The critical cases waiting now: ring for new unseen ones, show every unseen one.
      critical: function (ids) {
        const seen = load("helpline-seen-critical");
        const rung = load("helpline-rung-critical");
        pending = ids.filter(function (id) { return !seen.has(id); });
        const fresh = pending.filter(function (id) { return !rung.has(id); });
        if (fresh.length) {
          fresh.forEach(function (id) { rung.add(id); });
          save("helpline-rung-critical", rung);
          window.helplineAlerts += 1;
          ring();
        }
        show();
      },
      seen: function (id) {
        const seen = load("helpline-seen-critical");
        seen.add(id);
        save("helpline-seen-critical", seen);
        pending = pending.filter(function (other) { return other !== id; });
        show();
      },
      unread: function (n) { unread = n; title(); },
    };
  })();

  // ------------------------------------------------------------------ the queue and inbox
  // Every signed-in page but the wallboard listens: the inbox, the queue tables, the alarm.
  function listenToQueue(openCase) {
    const state = document.getElementById("live-state");
    let knownCases = null;
    let unreadBefore = null;

    const source = new EventSource("/events/queue" + (openCase ? "?case=" + openCase : ""));
    window.helplineQueueEvents = 0;
    source.addEventListener("queue", function (event) {
      const board = JSON.parse(event.data);
      window.helplineQueueEvents += 1;
      const waitingTable = document.getElementById("waiting");
      if (waitingTable) patch(waitingTable.tBodies[0], board.html.waiting);
      const othersTable = document.getElementById("others");
      if (othersTable) patch(othersTable.tBodies[0], board.html.others);
      patch(document.getElementById("inbox"), board.html.inbox);
      const count = document.getElementById("waiting-count");
      if (count) count.textContent = String(board.waiting.length);

      // New cases and new lines from children, said in the live region.
      const ids = board.waiting.map(function (c) { return c.id; });
      if (knownCases !== null) {
        board.waiting.filter(function (c) { return !knownCases.has(c.id); }).forEach(function (c) {
          announce(fill(texts.newCase, { id: c.id, risk: c.risk_label }));
        });
      }
      knownCases = new Set(ids);
      const unread = {};
      board.inbox.items.forEach(function (item) { unread[item.id] = item.unread; });
      if (unreadBefore !== null) {
        Object.keys(unread).forEach(function (id) {
          if (Number(id) !== openCase && unread[id] > (unreadBefore[id] || 0)) {
            announce(fill(texts.newMessage, { id: id }));
          }
        });
      }
      unreadBefore = unread;

      if (alarm) {
        alarm.critical(board.waiting.filter(function (c) { return c.critical; })
          .map(function (c) { return c.id; }));
        alarm.unread(board.inbox.unread);
      }
      if (state) { state.textContent = texts.live; state.classList.remove("offline"); }
    });
    source.addEventListener("signed_out", function () { location.href = "/signin?m=expired"; });
    source.addEventListener("open", function () {
      if (state) { state.textContent = texts.live; state.classList.remove("offline"); }
    });
    source.addEventListener("error", function () {
      if (state) { state.textContent = texts.offline; state.classList.add("offline"); }
    });

    setInterval(function () {
      document.querySelectorAll("#waiting td.age").forEach(function (cell) {
        cell.textContent = fill(texts.minutes, { n: minutesSince(cell.dataset.created) });
      });
    }, 30000);
  }

  // ------------------------------------------------------------------ forms without reloads
  async function post(form, extra) {
    const data = new URLSearchParams(new FormData(form));
    for (const [key, value] of Object.entries(extra || {})) data.set(key, value);
    const answer = await fetch(form.action, {
      method: "POST",
      body: data,
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (answer.status === 401) { location.href = "/signin?m=expired"; return null; }
    try { return await answer.json(); } catch (e) { return { ok: false, message: texts.failed }; }
  }

  // ------------------------------------------------------------------ a case
  function casePage() {
    const head = document.getElementById("case-head");
    const caseId = Number(head.dataset.case);
    const list = document.getElementById("transcript");
    const changed = document.getElementById("case-changed");
    const flash = document.getElementById("case-flash");
    let seen = Number(head.dataset.seen || "0");
    let lastId = Number(head.dataset.lastId || "0");
    let markedId = lastId;
    const drafts = window.sessionStorage;

    if (alarm && head.dataset.risk === "critical") alarm.seen(caseId);

    function say(message, ok) {
      flash.hidden = false;
      flash.textContent = message;
      flash.className = "flash " + (ok ? "ok" : "bad");
      flash.setAttribute("role", ok ? "status" : "alert");
    }

    // What the counsellor has on screen counts as read, only while they can see it.
    function markSeen() {
      if (document.visibilityState !== "visible" || lastId <= markedId) return;
      markedId = lastId;
      const data = new URLSearchParams({ upto: String(lastId) });
      fetch("/cases/" + caseId + "/seen", {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      });
    }
    document.addEventListener("visibilitychange", markSeen);

    function addLine(line) {
      if (line.n <= seen) return;
      seen = line.n;
      lastId = Math.max(lastId, line.id || 0);
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      list.appendChild(el("li", { class: "line from-" + line.sender, "data-n": String(line.n),
                                  "data-id": String(line.id) }, [
        el("span", { class: "who", text: line.label }),
        el("span", { class: "text", text: line.text }),
        el("time", { text: line.at }),
      ]));
      list.scrollTop = list.scrollHeight;
      if (line.sender === "child") {
        announce(line.label + ": " + line.text);
        markSeen();
      }
    }

    function notice(message, reload) {
      changed.hidden = false;
      changed.replaceChildren(document.createTextNode(message + " "));
      if (reload) changed.appendChild(el("a", { href: location.pathname, text: "↻" }));
    }

    function caseChanged(state) {
      const badge = document.getElementById("case-risk");
      badge.textContent = state.risk_label;
      badge.className = "badge risk-" + state.risk;
      head.className = "case-head risk-" + state.risk;
      head.dataset.risk = state.risk;
      document.getElementById("case-status").textContent = state.status_label;
      document.getElementById("case-owner").textContent = state.owner_label;
      const riskLevel = document.getElementById("risk-level");
      if (riskLevel) riskLevel.value = state.risk;
      if (state.left || state.erased) {
        // Nobody to write to any more: the forms say so; the draft stays where it is.
        ["send", "add-note", "release", "canned-insert"].forEach(function (id) {
          const button = document.getElementById(id);
          if (button && (state.erased || id !== "add-note")) button.disabled = true;
        });
      }
      if (state.erased) {
        list.replaceChildren(el("li", { class: "line from-system", text: state.message }));
      } else if (state.left) {
        list.appendChild(el("li", { class: "line from-system", text: state.message }));
      }
      notice(state.message, state.reload);
    }

    const source = new EventSource("/events/cases/" + caseId + "?seen=" + seen);
    source.addEventListener("line", function (event) { addLine(JSON.parse(event.data)); });
    source.addEventListener("case", function (event) { caseChanged(JSON.parse(event.data)); });
    source.addEventListener("gone", function (event) {
      notice(JSON.parse(event.data).message, true);
      source.close();
    });
    source.addEventListener("signed_out", function () { location.href = "/signin?m=expired"; });
    list.scrollTop = list.scrollHeight;

    // Drafts live in this tab's session storage, per case: an action, a reload or a trip to
    // another case never loses what the counsellor was typing.
    document.querySelectorAll("textarea[data-draft]").forEach(function (area) {
      const key = "helpline-draft-" + caseId + "-" + area.dataset.draft;
      const kept = drafts.getItem(key);
      if (kept && !area.value) area.value = kept;
      area.addEventListener("input", function () {
        if (area.value) drafts.setItem(key, area.value);
        else drafts.removeItem(key);
      });
      area.helplineClear = function () { area.value = ""; drafts.removeItem(key); };
    });

    // Close and block ask first.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });

    // Notes, risk and transfers go without a page load.
    document.querySelectorAll("form[data-ajax]").forEach(function (form) {
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        const button = form.querySelector("button[type=submit]");
        if (button) button.disabled = true;
        try {
          const result = await post(form);
          if (!result) return;
          say(result.message, result.ok);
          if (result.ok) {
            if (result.next) { location.href = result.next; return; }
            form.querySelectorAll("textarea[data-draft]").forEach(function (area) {
              area.helplineClear();
            });
            form.querySelectorAll("input[name=note]").forEach(function (input) { input.value = ""; });
          }
        } finally {
          if (button) button.disabled = false;
        }
      });
    });

    const form = document.getElementById("reply-form");
    if (form) {
      const text = document.getElementById("reply-text");
      const canned = document.getElementById("canned");
      const insert = document.getElementById("canned-insert");
      if (canned && insert) {
        insert.hidden = false;
        insert.addEventListener("click", function () {
          const option = canned.selectedOptions[0];
          if (option && option.dataset.text) {
            text.value = (text.value ? text.value + "\n" : "") + option.dataset.text;
            text.dispatchEvent(new Event("input"));
            canned.value = "";
            text.focus();
          }
        });
      }
      text.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
      });
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        const button = document.getElementById("send");
        button.disabled = true;
        try {
          const result = await post(form);
          if (!result) return;
          if (result.ok) {
            text.helplineClear();
            if (canned) canned.value = "";
            flash.hidden = true;
          } else {
            say(result.message, false);
          }
        } finally {
          button.disabled = false;
          text.focus();
        }
      });
    }
    markSeen();
  }

  // ------------------------------------------------------------------ the wallboard
  function wallPage() {
    const wall = document.getElementById("wall");
    const state = document.getElementById("live-state");
    let alarmsBefore = 0;
    const source = new EventSource("/events/wallboard");
    source.addEventListener("wall", function (event) {
      const data = JSON.parse(event.data);
      patch(wall, data.html);
      body.classList.toggle("alarm", data.alarms > 0);
      document.title = (data.alarms ? data.alarm_title + " · " : "") + baseTitle;
      if (data.alarms > alarmsBefore) announce(data.alarm_text);
      alarmsBefore = data.alarms;
      window.helplineWall = (window.helplineWall || 0) + 1;
      if (state) { state.textContent = texts.live; state.classList.remove("offline"); }
    });
    source.addEventListener("signed_out", function () { location.href = "/signin?m=expired"; });
    source.addEventListener("error", function () {
      if (state) { state.textContent = texts.offline; state.classList.add("offline"); }
    });
  }

  const page = body.dataset.page;
  if (page === "queue") listenToQueue(null);
  if (page === "case") {
    listenToQueue(Number(document.getElementById("case-head").dataset.case));
    casePage();
  }
  if (page === "board") wallPage();
})();
