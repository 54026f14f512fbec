// The counsellors' console: live queue and live chat over server-sent events.
// Plain JavaScript, no build step, nothing loaded from elsewhere. Every page works without it.
"use strict";

(function () {
  document.documentElement.classList.add("js");
  const body = document.body;
  const csrf = body.dataset.csrf || "";

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

  function minutesSince(iso) {
    return Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 60000));
  }

  // ------------------------------------------------------------------ the queue
  function queuePage() {
    const texts = document.getElementById("queue-texts").dataset;
    const state = document.getElementById("live-state");
    const toggle = document.getElementById("sound-toggle");
    let soundOn = localStorage.getItem("helpline-sound") !== "off";
    let known = null; // ids of critical cases already seen
    const alarm = new Audio("/sound/alert.wav");
    window.helplineAlerts = 0;

    function showSound() {
      toggle.hidden = false;
      toggle.textContent = soundOn ? texts.soundOn : texts.soundOff;
      toggle.setAttribute("aria-pressed", soundOn ? "true" : "false");
    }
    toggle.addEventListener("click", function () {
      soundOn = !soundOn;
      localStorage.setItem("helpline-sound", soundOn ? "on" : "off");
      showSound();
    });
    showSound();

    function row(c) {
      const actions = el("td", { class: "actions" });
      if (c.status === "waiting") {
        actions.appendChild(el("form", { method: "post", action: c.url + "/take", class: "inline" }, [
          el("input", { type: "hidden", name: "csrf", value: csrf }),
          el("button", { type: "submit", class: "primary take", text: texts.take }),
        ]));
      }
      actions.appendChild(el("a", { class: "button", href: c.url, text: texts.open }));
      return el("tr", { class: "case risk-" + c.risk, "data-case": String(c.id) }, [
        el("td", {}, [el("a", { href: c.url, text: "#" + c.id })]),
        el("td", {}, [el("span", { class: "badge risk-" + c.risk, text: c.risk_label })]),
        el("td", { text: c.category_label }),
        el("td", { text: c.channel }),
        el("td", { class: "age", "data-created": c.created_at,
                   text: texts.minutes.replace("{n}", String(c.status === "waiting"
                     ? minutesSince(c.created_at) : c.waiting_minutes)) }),
        el("td", { text: c.owner || "" }),
        actions,
      ]);
    }

    function fill(id, cases) {
      const table = document.getElementById(id);
      if (!table) return;
      const tbody = table.tBodies[0];
      const rows = cases.length ? cases.map(row)
        : [el("tr", { class: "empty" }, [el("td", { colspan: "7", text: table.dataset.empty })])];
      tbody.replaceChildren(...rows);
    }

    function alarmFor(board) {
      const critical = board.waiting.filter(function (c) { return c.critical; })
        .map(function (c) { return c.id; });
      const fresh = known === null ? critical : critical.filter(function (id) { return !known.has(id); });
      known = new Set(critical);
      if (fresh.length) {
        window.helplineAlerts += 1;
        body.classList.add("alarm");
        setTimeout(function () { body.classList.remove("alarm"); }, 4000);
        if (soundOn) alarm.play().catch(function () { /* autoplay refused until a click */ });
      }
    }

    const source = new EventSource("/events/queue");
    source.addEventListener("queue", function (event) {
      const board = JSON.parse(event.data);
      fill("waiting", board.waiting);
      fill("mine", board.mine);
      fill("others", board.others);
      document.getElementById("waiting-count").textContent = String(board.waiting.length);
      alarmFor(board);
      state.textContent = texts.live;
      state.classList.remove("offline");
    });
    source.addEventListener("signed_out", function () { location.href = "/signin?m=expired"; });
    source.addEventListener("open", function () {
      state.textContent = texts.live;
      state.classList.remove("offline");
    });
    source.addEventListener("error", function () {
      state.textContent = texts.offline;
      state.classList.add("offline");
    });

    setInterval(function () {
      document.querySelectorAll("#waiting td.age").forEach(function (cell) {
        cell.textContent = texts.minutes.replace("{n}", String(minutesSince(cell.dataset.created)));
      });
    }, 30000);
  }

  // ------------------------------------------------------------------ a case
  function casePage() {
    const head = document.getElementById("case-head");
    const caseId = head.dataset.case;
    const list = document.getElementById("transcript");
    const changed = document.getElementById("case-changed");
    let seen = Number(head.dataset.seen || "0");

    function addLine(line) {
      if (line.n <= seen) return;
      seen = line.n;
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      list.appendChild(el("li", { class: "line from-" + line.sender, "data-n": String(line.n) }, [
        el("span", { class: "who", text: line.label }),
        el("span", { class: "text", text: line.text }),
        el("time", { text: line.at }),
      ]));
      list.scrollTop = list.scrollHeight;
    }

    function notice(message) {
      changed.hidden = false;
      changed.replaceChildren(document.createTextNode(message + " "),
        el("a", { href: location.pathname, text: "↻" }));
    }

    const source = new EventSource("/events/cases/" + caseId + "?seen=" + seen);
    source.addEventListener("line", function (event) { addLine(JSON.parse(event.data)); });
    source.addEventListener("case", function (event) { notice(JSON.parse(event.data).message); });
    source.addEventListener("gone", function (event) {
      notice(JSON.parse(event.data).message);
      source.close();
    });
    source.addEventListener("signed_out", function () { location.href = "/signin?m=expired"; });
    list.scrollTop = list.scrollHeight;

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
        const data = new FormData(form);
        const button = document.getElementById("send");
        button.disabled = true;
        try {
          const answer = await fetch(form.action, {
            method: "POST",
            body: new URLSearchParams(data),
            headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
            credentials: "same-origin",
          });
          if (answer.status === 401) { location.href = "/signin?m=expired"; return; }
          const result = await answer.json();
          if (result.ok) {
            text.value = "";
            if (canned) canned.value = "";
          } else {
            location.href = location.pathname + "?error=" + encodeURIComponent(result.error);
          }
        } finally {
          button.disabled = false;
          text.focus();
        }
      });
    }
  }

  const page = body.dataset.page;
  if (page === "queue") queuePage();
  if (page === "case") casePage();
})();
