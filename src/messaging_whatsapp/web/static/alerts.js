// The alerts page: live from the alert events (the server renders the cards again), and the rules
// an admin changes in place through the API.
(function () {
  "use strict";

  var content = document.getElementById("alerts-content");

  function refresh() {
    MW.fragment("/alerts/fragments/content").then(function (nodes) {
      if (!nodes) return;
      content.replaceChildren(nodes);
    }).catch(function () { /* the next event or a reload shows it */ });
  }

  function save(form) {
    var enabled = document.querySelector("input[name=enabled][form='" + form.id + "']");
    var body = { threshold: Number(form.elements.threshold.value), enabled: enabled ? enabled.checked : true };
    MW.api("PUT", "/api/v1/alerts/rules/" + encodeURIComponent(form.dataset.kind), body).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Rule saved"));
      refresh();
    });
  }

  content.addEventListener("submit", function (event) {
    if (!event.target.classList.contains("rule-form")) return;
    event.preventDefault();
    save(event.target);
  });

  MW.on("alert_updated", refresh);
  MW.on("resync", refresh);
})();
