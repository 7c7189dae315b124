// Optional live refresh: every data-refresh seconds, fetch this page again
// and swap the parts marked data-live. Reading works without it.
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-refresh"), 10);
  // A submitted form shows that it is working (actions wait for the operator).
  document.addEventListener("submit", function (e) {
    var b = e.target.querySelector("button[type=submit]");
    if (b && e.target.method.toLowerCase() === "post") {
      b.setAttribute("aria-busy", "true");
      b.textContent = b.textContent + "…";
    }
  });
  // Back from the history cache: the buttons are no longer busy.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
      b.removeAttribute("aria-busy");
      b.textContent = b.textContent.replace(/…$/, "");
    });
  });
  if (!(secs > 0) || !window.fetch || !window.DOMParser) return;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    var active = document.activeElement;
    if (active && active.closest && active.closest("form")) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
        });
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, secs * 1000);
})();
