// The alert banner (supervisors and admins): when an alert is raised or resolved, the server renders
// the banner again and it takes the old one's place; a resync does the same.
(function () {
  "use strict";

  function refresh() {
    MW.fragment("/alerts/fragments/banner").then(function (nodes) {
      var current = document.querySelector("[data-testid=alert-banner]");
      if (!nodes || !current) return;
      var fresh = nodes.querySelector("[data-testid=alert-banner]");
      if (fresh) current.replaceWith(fresh);
    }).catch(function () { /* the next event or a reload shows it */ });
  }

  MW.on("alert_updated", refresh);
  MW.on("resync", refresh);
})();
