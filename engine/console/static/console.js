// Gannet console: refreshes the live part of a page (an element with
// data-refresh="SECONDS") by fetching the page again and swapping that
// element, so that charts and tables stay current without a reload. No
// other script runs; every action is a plain form with a confirmation page.
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = Math.max(5, parseInt(live.getAttribute("data-refresh"), 10) || 10) * 1000;
  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (!res.ok || res.redirected) {
          throw new Error("status " + res.status);
        }
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(live.id);
        if (fresh) {
          live.replaceWith(fresh);
          live = fresh;
        }
      })
      .catch(function () { /* keep what is shown; try again next time */ });
  }
  window.setInterval(refresh, every);
})();
