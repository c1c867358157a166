// Bulkhead console: live updates over Server-Sent Events and lease countdowns.
// Works without it too: every page is complete as served, and forms post normally.
"use strict";
(function () {
  function human(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (d) return d + "d " + h + "h " + m + "m";
    if (h) return h + "h " + m + "m " + sec + "s";
    return m + "m " + sec + "s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-expires")) - now;
      var text = isNaN(left) ? "" : left > 0 ? "(in " + human(left) + ")" : "(expired)";
      if (el.textContent !== text) el.textContent = text;
    });
  }

  // Keep what the responder is typing, and where the focus is, across a re-render.
  function remember(root) {
    var state = { values: {}, open: [], focus: null, start: null, end: null };
    root.querySelectorAll("textarea[id], input[id]:not([type=hidden])").forEach(function (el) {
      if (el.value) state.values[el.id] = el.value;
    });
    root.querySelectorAll("details[id][open]").forEach(function (el) { state.open.push(el.id); });
    var active = document.activeElement;
    if (active && active.id && root.contains(active)) {
      state.focus = active.id;
      if (typeof active.selectionStart === "number") {
        state.start = active.selectionStart;
        state.end = active.selectionEnd;
      }
    }
    return state;
  }

  function restore(state) {
    Object.keys(state.values).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && !el.disabled) el.value = state.values[id];
    });
    state.open.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.open = true;
    });
    if (state.focus) {
      var el = document.getElementById(state.focus);
      if (el && !el.disabled) {
        el.focus({ preventScroll: true });
        if (state.start !== null && typeof el.setSelectionRange === "function") {
          try { el.setSelectionRange(state.start, state.end); } catch (e) { /* not a text field */ }
        }
      }
    }
  }

  function connect(main, region, status) {
    var source = new EventSource(main.getAttribute("data-live"));
    source.addEventListener("update", function (event) {
      var state = remember(region);
      region.innerHTML = JSON.parse(event.data).html;
      restore(state);
      tick();
      // One zone everywhere, labelled: the page shows every other time in UTC.
      status.textContent = "Live: updated " + new Date().toISOString().slice(11, 19) + " UTC";
    });
    source.addEventListener("status", function (event) {
      var text = JSON.parse(event.data).text;
      status.textContent = text || "Live";
    });
    source.addEventListener("logout", function () {
      source.close();
      location.assign("/console/login?next=" + encodeURIComponent(location.pathname + location.search));
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        status.textContent = "Live updates lost; retrying in 5 s";
        setTimeout(function () { connect(main, region, status); }, 5000);
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    var error = document.getElementById("form-error");
    if (error) error.focus();
    var main = document.getElementById("main");
    var region = document.getElementById("live");
    var status = document.getElementById("live-status");
    if (main && region && status && main.getAttribute("data-live") && window.EventSource) {
      connect(main, region, status);
    }
  });
})();
