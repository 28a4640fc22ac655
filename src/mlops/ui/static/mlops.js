// mlops dashboard: draw the charts a page carries, sort tables, confirm actions, and
// refresh live pages in place. No framework; plotly.js comes from plotly's package.
(function () {
  "use strict";

  // plotly.js is large (~4.5 MB): load it only on pages that carry a chart.
  function withPlotly(callback) {
    if (window.Plotly) { callback(); return; }
    var script = document.getElementById("plotly-js");
    if (!script) {
      script = document.createElement("script");
      script.id = "plotly-js";
      script.src = document.body.dataset.plotly;
      document.head.appendChild(script);
    }
    script.addEventListener("load", callback);
  }

  function drawCharts(root) {
    if (!root.querySelector(".chart[data-figure]")) return;
    if (!window.Plotly) { withPlotly(function () { drawCharts(root); }); return; }
    root.querySelectorAll(".chart[data-figure]").forEach(function (element) {
      var source = document.getElementById(element.dataset.figure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign(
        { margin: { l: 56, r: 16, t: 36, b: 44 }, font: { family: "system-ui, sans-serif", size: 12 },
          paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", hovermode: "closest",
          legend: { orientation: "h", y: -0.2 } },
        figure.layout || {}
      );
      window.Plotly.react(element, figure.data || [], layout,
        { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
      element.dataset.drawn = "1";
    });
  }

  function cellValue(row, index) {
    var cell = row.children[index];
    if (!cell) return "";
    var raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    var number = parseFloat(raw);
    return raw !== "" && !isNaN(number) && /^-?[\d.]+(e-?\d+)?$/i.test(raw) ? number : raw.toLowerCase();
  }

  function makeSortable(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th").forEach(function (header, index) {
        if (header.dataset.nosort !== undefined) return;
        header.classList.add("sortable");
        header.addEventListener("click", function () {
          var body = table.tBodies[0];
          var ascending = !header.classList.contains("sorted-asc");
          table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
          header.classList.add(ascending ? "sorted-asc" : "sorted-desc");
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = cellValue(a, index), y = cellValue(b, index);
            if (x === y) return 0;
            if (x === "" || x === "—") return 1;
            if (y === "" || y === "—") return -1;
            return (x < y ? -1 : 1) * (ascending ? 1 : -1);
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  function filterTables(root) {
    root.querySelectorAll("input[data-filter-table]").forEach(function (input) {
      var table = document.getElementById(input.dataset.filterTable);
      if (!table) return;
      input.addEventListener("input", function () {
        var needle = input.value.trim().toLowerCase();
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
          row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
        });
      });
    });
  }

  function confirmActions(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function enhance(root) {
    drawCharts(root);
    makeSortable(root);
    filterTables(root);
    confirmActions(root);
  }

  function scheduleRefresh() {
    var main = document.getElementById("main");
    var seconds = main && parseFloat(main.dataset.refresh);
    if (!seconds) return;
    window.setTimeout(function refresh() {
      if (document.hidden || document.activeElement && /INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName)) {
        window.setTimeout(refresh, seconds * 1000);
        return;
      }
      fetch(window.location.href, { headers: { "X-MLOps-Refresh": "1" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
            var current = document.getElementById("main");
            if (fresh && current) {
              current.innerHTML = fresh.innerHTML;
              current.dataset.refreshed = String(Number(current.dataset.refreshed || 0) + 1);
              enhance(current);
            }
          }
        })
        .catch(function () {})
        .then(function () { window.setTimeout(refresh, seconds * 1000); });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    scheduleRefresh();
  });
})();
