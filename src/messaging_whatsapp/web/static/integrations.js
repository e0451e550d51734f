// The integrations page (events out): a subscription created through the API shows its secret
// here once (only this element holds it, until "Done"); test events, deletions and refreshes fetch
// the server-rendered content again.
(function () {
  "use strict";

  var content = document.getElementById("integrations-content");
  var form = document.getElementById("subscription-form");
  var secretBox = document.querySelector("[data-testid=webhook-secret]");
  var secretValue = document.getElementById("webhook-secret-value");

  function chosen() {
    var table = content.querySelector("[data-testid=webhook-deliveries]");
    return table ? table.dataset.subscriptionId : new URLSearchParams(location.search).get("subscription");
  }

  function refresh(subscriptionId) {
    var id = subscriptionId === undefined ? chosen() : subscriptionId;
    var url = "/integrations/fragments/content" + (id ? "?subscription=" + encodeURIComponent(id) : "");
    return MW.fragment(url).then(function (nodes) {
      if (nodes) content.replaceChildren(nodes);
    }).catch(function () { /* a reload shows it */ });
  }

  function refuse(response) {
    return MW.errorMessage(response).then(MW.toast);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var events = Array.prototype.map.call(form.querySelectorAll("input[name=events]:checked"), function (box) {
      return box.value;
    });
    if (!events.length) { MW.toast(MW.t("Choose at least one event type.")); return; }
    var body = { url: form.elements.url.value.trim(), events: events, description: form.elements.description.value.trim() };
    MW.api("POST", "/api/v1/webhook-subscriptions", body).then(function (response) {
      if (!response.ok) return refuse(response);
      return response.json().then(function (created) {
        secretValue.textContent = created.secret;
        secretBox.hidden = false;
        secretBox.scrollIntoView({ block: "nearest" });
        form.reset();
        form.closest("details").open = false;
        MW.toast(MW.t("Subscription created"));
        history.replaceState(null, "", "/integrations?subscription=" + encodeURIComponent(created.id));
        return refresh(created.id);
      });
    });
  });

  // "All events" and single types exclude each other.
  form.addEventListener("change", function (event) {
    var box = event.target;
    if (box.name !== "events" || !box.checked) return;
    form.querySelectorAll("input[name=events]").forEach(function (other) {
      if (other !== box && (box.value === "*" || other.value === "*")) other.checked = false;
    });
  });

  function copied(ok) {
    MW.toast(ok ? MW.t("Copied.") : MW.t("Copy failed: select the secret and copy it."));
  }

  document.getElementById("copy-secret").addEventListener("click", function () {
    var secret = secretValue.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(secret).then(function () { copied(true); }, function () { copied(false); });
      return;
    }
    // Plain http (an intranet install): select the text and copy the old way.
    var range = document.createRange();
    range.selectNodeContents(secretValue);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
    copied(ok);
  });

  document.getElementById("hide-secret").addEventListener("click", function () {
    secretValue.textContent = "";
    secretBox.hidden = true;
  });

  content.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var action = button.dataset.action;
    if (action === "refresh") { refresh(); return; }
    var path = "/api/v1/webhook-subscriptions/" + encodeURIComponent(button.dataset.id);
    if (action === "delete") {
      if (!window.confirm(MW.t("Delete this subscription? Its deliveries are deleted too and nothing more is sent to it."))) return;
      MW.api("DELETE", path).then(function (response) {
        if (!response.ok) return refuse(response);
        MW.toast(MW.t("Subscription deleted"));
        var wasChosen = chosen() === button.dataset.id;
        if (wasChosen) history.replaceState(null, "", "/integrations");
        return refresh(wasChosen ? null : undefined);
      });
    } else if (action === "test") {
      button.disabled = true;
      MW.api("POST", path + "/test").then(function (response) {
        button.disabled = false;
        if (!response.ok) return refuse(response);
        MW.toast(MW.t("Test event queued: it shows in the deliveries in a moment."));
        history.replaceState(null, "", "/integrations?subscription=" + encodeURIComponent(button.dataset.id));
        setTimeout(function () { refresh(button.dataset.id); }, 1500);
      });
    }
  });

  // Deliveries move on their own (retries): look again now and then, unless attempts are open.
  setInterval(function () {
    if (document.hidden || content.querySelector("details[open]")) return;
    if (content.querySelector("[data-status=pending], [data-status=retrying]")) refresh();
  }, 5000);
})();
