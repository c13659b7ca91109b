// Switchboard console: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Live page: the server renders the panel fragment and pushes it over Server-Sent Events.
  function live() {
    var panel = document.getElementById("live-panel");
    if (!panel || !window.EventSource) return;
    var source = new EventSource(panel.dataset.stream);
    source.addEventListener("live", function (e) {
      replaceKeepingInput(panel, e.data);
      panel.dataset.updates = String((Number(panel.dataset.updates) || 0) + 1);
    });
    source.onerror = function () { panel.classList.add("stale"); };
    source.onopen = function () { panel.classList.remove("stale"); };
    window.addEventListener("beforeunload", function () { source.close(); });
  }

  // A push replaces the panel's HTML, forms included: what a supervisor is typing there (a pause
  // reason) is carried into the new form, with the focus and the cursor, instead of being wiped
  // between the keystroke and the click.
  function fieldKey(el) {
    return (el.form ? el.form.getAttribute("action") : "") + "|" + el.name;
  }
  function replaceKeepingInput(panel, html) {
    var typed = {}, active = document.activeElement, focusKey = null, start = null, end = null;
    panel.querySelectorAll("input[name]:not([type=hidden]), textarea[name], select[name]").forEach(function (el) {
      if (el.value) typed[fieldKey(el)] = el.value;
    });
    if (active && active.name && panel.contains(active)) {
      focusKey = fieldKey(active);
      try { start = active.selectionStart; end = active.selectionEnd; } catch (err) { start = null; }
    }
    panel.innerHTML = html;
    panel.querySelectorAll("input[name]:not([type=hidden]), textarea[name], select[name]").forEach(function (el) {
      var key = fieldKey(el);
      if (Object.prototype.hasOwnProperty.call(typed, key)) el.value = typed[key];
      if (key === focusKey) {
        el.focus();
        if (start !== null) { try { el.setSelectionRange(start, end); } catch (err) { /* not a text field */ } }
      }
    });
  }

  // Forms that need a second thought (deletions, revocations).
  function confirms() {
    document.addEventListener("submit", function (e) {
      var msg = e.target.getAttribute("data-confirm");
      if (msg && !window.confirm(msg)) e.preventDefault();
    });
  }

  // Contact import: upload with a progress bar, then follow the server-side import job.
  function importer() {
    var form = document.getElementById("import-form");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    var bar = document.getElementById("import-progress");
    var status = document.getElementById("import-status");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) { bar.max = ev.total * 2; bar.value = ev.loaded; }
        status.textContent = "uploading ...";
      };
      xhr.onload = function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = {detail: xhr.responseText}; }
        if (xhr.status >= 400 || !data.job) { status.textContent = data.detail || ("error " + xhr.status); return; }
        follow(data.job);
      };
      xhr.onerror = function () { status.textContent = "upload failed"; };
      xhr.send(new FormData(form));
    });
    function follow(job) {
      fetch("/contacts/import/" + job + ".json", {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (j) {
          var total = Math.max(j.total, 1);
          bar.max = total; bar.value = j.done;
          status.textContent = j.state + ": " + j.done + " of " + j.total + " rows";
          if (j.state === "running" || j.state === "queued") { setTimeout(function () { follow(job); }, 300); }
          else { window.location = "/contacts/import/" + job; }
        });
    }
  }

  document.addEventListener("DOMContentLoaded", function () { live(); confirms(); importer(); });
})();
