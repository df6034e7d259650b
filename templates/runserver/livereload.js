// manage runserver: live reload, stylesheet swaps and the build error overlay.
// Served at /__manage/livereload.js and injected into HTML pages by the dev
// proxy; it talks to /__manage/events (server-sent events) on the same origin.
(function () {
  "use strict";
  if (window.__manageLiveReload) return;
  window.__manageLiveReload = true;

  var instance = null;
  // The build this page came from (absent on manage's own error pages).
  var script = document.currentScript;
  var served = script && script.getAttribute("data-generation");
  var generation = served ? Number(served) : null;
  var onErrorPage = document.documentElement.hasAttribute("data-manage-error-page");
  var events = new EventSource("/__manage/events");

  events.addEventListener("hello", function (e) {
    var hello = JSON.parse(e.data);
    // A different manage process, or a swap we missed while disconnected.
    if ((instance !== null && hello.instance !== instance) ||
        (generation !== null && hello.generation !== generation)) {
      location.reload();
      return;
    }
    instance = hello.instance;
    generation = hello.generation;
  });

  events.addEventListener("reload", function () {
    location.reload();
  });

  events.addEventListener("css", function (e) {
    var changed = JSON.parse(e.data);
    var links = document.querySelectorAll('link[rel~="stylesheet"]');
    var swapped = 0;
    for (var i = 0; i < links.length; i++) {
      var url = new URL(links[i].href, location.href);
      if (url.origin === location.origin && changed.indexOf(url.pathname) !== -1) {
        url.searchParams.set("__manage", Date.now().toString());
        var fresh = links[i].cloneNode();
        fresh.href = url.toString();
        fresh.onload = (function (old) {
          return function () { old.remove(); };
        })(links[i]);
        links[i].parentNode.insertBefore(fresh, links[i].nextSibling);
        swapped++;
      }
    }
    if (swapped === 0) location.reload();
  });

  events.addEventListener("overlay", function (e) {
    if (onErrorPage) {
      location.reload();
      return;
    }
    showOverlay(JSON.parse(e.data));
  });

  events.addEventListener("clear", function () {
    var old = document.getElementById("__manage_overlay");
    if (old) old.remove();
  });

  function showOverlay(html) {
    var old = document.getElementById("__manage_overlay");
    if (old) old.remove();
    var overlay = document.createElement("div");
    overlay.id = "__manage_overlay";
    overlay.setAttribute("role", "alertdialog");
    overlay.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;overflow:auto;background:rgba(20,22,28,.94);" +
      "color:#e8e8e8;font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;padding:2rem;";
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "× dismiss (Esc)";
    close.style.cssText =
      "position:fixed;top:1rem;right:1rem;background:#333;color:#fff;border:1px solid #666;" +
      "border-radius:4px;padding:.3rem .7rem;cursor:pointer;font:inherit;";
    close.onclick = function () { overlay.remove(); };
    var body = document.createElement("div");
    // The server builds this markup with every value HTML-escaped.
    body.innerHTML = html;
    overlay.appendChild(close);
    overlay.appendChild(body);
    document.body.appendChild(overlay);
  }

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      var old = document.getElementById("__manage_overlay");
      if (old) old.remove();
    }
  });
})();
