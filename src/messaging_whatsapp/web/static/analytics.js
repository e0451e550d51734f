// The Analytics page: the range picker, uPlot charts of the series the server rendered, and live
// refreshes of the figures while the range ends now (on message and campaign events, at most one
// every few seconds: the rollup folds changes every two).
(function () {
  "use strict";
  var REFRESH_MS = 3000;
  var LABELS = { sent: "Sends", delivered: "Deliveries", read: "Reads", failed: "Failures", inbound: "Received", outbound: "Sent out" };
  var COLORS = { sent: "#53bdeb", delivered: "#00a884", read: "#7c4dff", failed: "#e53935", inbound: "#f29f05", outbound: "#008069" };
  var charts = [];
  var form = document.querySelector("[data-testid=analytics-filters]");
  var holder = document.getElementById("analytics-figures");

  function portuguese() { return document.documentElement.lang !== "en"; }

  var NAMES_PT = {
    MMMM: ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"],
    MMM: ["jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez"],
    WWWW: ["domingo", "segunda", "terça", "quarta", "quinta", "sexta", "sábado"],
    WWW: ["dom", "seg", "ter", "qua", "qui", "sex", "sáb"]
  };

  function seriesData() {
    var node = holder.querySelector(".analytics-series");
    return node ? JSON.parse(node.textContent) : null;
  }

  function chart(node, data, names) {
    var zone = data.timezone;
    var x = data.x.map(function (iso) { return Date.parse(iso) / 1000; });
    var options = {
      width: Math.max(280, node.clientWidth),
      height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone); },
      series: [{ label: MW.t("When") }].concat(names.map(function (name) {
        return {
          label: MW.t(LABELS[name]),
          stroke: COLORS[name],
          fill: COLORS[name] + "22",
          width: 2,
          points: { show: x.length <= 48 }
        };
      })),
      axes: [{}, { size: 50 }],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } }
    };
    if (portuguese()) {
      options.fmtDate = function (template) {
        var ours = template.replace("{h}:{mm}{aa}", "{HH}:{mm}").replace("{h}{aa}", "{HH}h").replace("{M}/{D}", "{D}/{M}");
        return uPlot.fmtDate(ours, NAMES_PT);
      };
    }
    var values = [x].concat(names.map(function (name) { return data[name]; }));
    return new uPlot(options, values, node);
  }

  function drawCharts() {
    charts.forEach(function (one) { one.destroy(); });
    charts = [];
    var data = seriesData();
    if (!data || typeof uPlot === "undefined") return;
    var delivery = holder.querySelector("[data-chart=delivery]");
    var volume = holder.querySelector("[data-chart=volume]");
    if (delivery) charts.push(chart(delivery, data, ["sent", "delivered", "read", "failed"]));
    if (volume) charts.push(chart(volume, data, ["inbound", "outbound"]));
  }

  // The range picker: "custom" shows the dates; any other choice applies at once.
  if (form) {
    var custom = form.querySelector(".custom-range");
    form.querySelectorAll("input[name=range]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        form.querySelectorAll(".range-option").forEach(function (label) {
          label.classList.toggle("is-active", label.contains(radio) && radio.checked);
        });
        custom.hidden = radio.value !== "custom";
        if (radio.value !== "custom") form.requestSubmit();
      });
    });
    form.addEventListener("submit", function () {
      // Dates mean nothing outside a custom range: keep them out of the address.
      if (custom.hidden) custom.querySelectorAll("input").forEach(function (input) { input.disabled = true; });
    });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.requestSubmit(); });
    });
  }

  var pending = null;
  var lastRefresh = 0;
  function refresh() {
    pending = null;
    lastRefresh = Date.now();
    MW.fragment("/analytics/figures?" + holder.dataset.query).then(function (nodes) {
      if (!nodes) return;
      holder.replaceChildren(nodes);
      drawCharts();
    }).catch(function () { /* the next event tries again */ });
  }
  function scheduleRefresh() {
    var live = holder.querySelector(".figures");
    if (!live || live.dataset.live !== "on" || pending) return;
    pending = setTimeout(refresh, Math.max(REFRESH_MS, lastRefresh + REFRESH_MS - Date.now()));
  }
  ["new_message", "message_status", "campaign_updated"].forEach(function (type) { MW.on(type, scheduleRefresh); });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawCharts, 150);
  });
  drawCharts();
})();
