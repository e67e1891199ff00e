// The Hosts page, kept live: the server sends the whole list of the user's hosts
// on connect and whenever one changes; we redraw the table with textContent only
// (never innerHTML), so nothing a host reports can inject markup.
(function () {
  "use strict";
  const tbody = document.getElementById("hosts");
  const live = document.getElementById("live-state");
  const columns = 10;
  let retry = 500;

  function sizeFormat(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let n = bytes, u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function render(hosts) {
    const rows = [];
    for (const h of hosts) {
      const tr = document.createElement("tr");
      tr.dataset.host = h.name;
      tr.dataset.state = h.state;
      const name = cell(tr, "");
      const a = document.createElement("a");
      a.href = "/hosts/" + encodeURIComponent(h.id) + "/";
      a.textContent = h.name;
      name.appendChild(a);
      const state = cell(tr, "");
      const badge = document.createElement("span");
      badge.className = "badge " + (h.state === "online" ? "online" : "offline");
      badge.textContent = h.state;
      state.appendChild(badge);
      cell(tr, h.team);
      cell(tr, h.kernel);
      cell(tr, h.architecture);
      cell(tr, h.cpus);
      cell(tr, sizeFormat(h.memory_bytes));
      cell(tr, (h.runtime || "") + " " + (h.runtime_version || ""));
      cell(tr, h.engine_version);
      // Online: when its worker started (stable); offline: when it was last heard of.
      const when = (t) => (t ? t.replace("T", " ").slice(0, 19) : "never");
      cell(tr, h.state === "online" ? "up since " + when(h.worker_started_at) : "last seen " + when(h.last_seen));
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell(tr, "No hosts yet. Start a worker: script/server --worker-only");
      td.colSpan = columns;
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/hosts/");
    ws.onopen = function () { retry = 500; live.dataset.state = "live"; live.textContent = "live"; };
    ws.onmessage = function (ev) {
      const msg = JSON.parse(ev.data);
      if (msg.type === "hosts") render(msg.hosts);
    };
    ws.onclose = function (ev) {
      live.dataset.state = "disconnected";
      if (ev.code === 4401) { location.reload(); return; }  // logged out: go to the login page
      if (ev.code === 4403) { live.textContent = "not in any team"; return; }
      live.textContent = "reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  connect();
})();
