// The operator's view: replay one DLQ entry or all of them through the API, then ask the DLQ and
// the streams for themselves again (they also refresh every 5 seconds, see ops/page.html).
(function () {
  var MW = window.MW;

  function refresh(id) {
    var node = document.getElementById(id);
    if (node && window.htmx) window.htmx.trigger(node, "refresh");
  }

  function replay(body, button) {
    button.disabled = true;
    return MW.api("POST", "/api/v1/ops/dlq/replay", body)
      .then(function (response) {
        if (!response.ok) return MW.errorMessage(response).then(MW.toast);
        return response.json().then(function (result) {
          if (!result.replayed) MW.toast(MW.t("Nothing was replayed: the entry already left the DLQ."));
          else if (result.replayed === 1) MW.toast(MW.t("One entry replayed."));
          else MW.toast(MW.t("{count} entries replayed.", { count: result.replayed }));
        });
      })
      .catch(function () { MW.toast(MW.t("Something went wrong. Try again.")); })
      .finally(function () {
        button.disabled = false;
        refresh("ops-dlq");
        refresh("ops-streams");
      });
  }

  document.addEventListener("click", function (event) {
    var one = event.target.closest("[data-replay-id]");
    if (one) {
      replay({ ids: [one.getAttribute("data-replay-id")] }, one);
      return;
    }
    var all = event.target.closest("[data-replay-all]");
    if (all && window.confirm(MW.t("Replay every entry of the DLQ? Each goes back to the stream it came from."))) {
      replay({}, all);
    }
  });
})();
