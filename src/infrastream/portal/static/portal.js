/* Infrastream portal: show <time datetime=…> in the viewer's time zone.
   The server renders UTC; this keeps the absolute UTC time in the tooltip. */
(function () {
  "use strict";
  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "local time";
  var sameDay = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  var otherDay = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };

  function localize(element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    var now = new Date();
    var today = moment.toDateString() === now.toDateString();
    element.textContent = moment.toLocaleString(undefined, today ? sameDay : otherDay);
    element.title = moment.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") +
      " — shown in " + zone;
  }

  function localizeAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("time[datetime]")) { localize(scope); }
    scope.querySelectorAll("time[datetime]").forEach(localize);
  }

  document.addEventListener("DOMContentLoaded", function () { localizeAll(document); });
  document.addEventListener("htmx:load", function (event) { localizeAll(event.detail.elt); });
})();
