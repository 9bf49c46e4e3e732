/* Gauntlet pages: theme toggle and Plotly charts fed by JSON data islands.
 *
 * A chart is a <div class="chart" id="X"> plus a <script type="application/json" id="X-data">
 * holding a Plotly figure built in Python. Live regions swapped in by htmx carry fresh data
 * islands; after every swap the charts are redrawn with Plotly.react, which keeps the
 * user's zoom and range (layout.uirevision) instead of reloading the page.
 */
(function () {
  "use strict";

  var THEME_KEY = "gauntlet-theme";

  function storedTheme() {
    try { return localStorage.getItem(THEME_KEY); } catch (e) { return null; }
  }

  function effectiveTheme() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen === "dark" || chosen === "light") return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function updateToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var theme = effectiveTheme();
    var next = theme === "dark" ? "light" : "dark";
    button.textContent = theme === "dark" ? "\u2600 Light" : "\u263E Dark";
    button.setAttribute("aria-label", "Switch to " + next + " theme");
    button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
  }

  function toggleTheme() {
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode: not remembered */ }
    updateToggle();
    renderCharts(document, true);
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function themed(layout, narrow) {
    var text = cssVar("--text"), grid = cssVar("--grid"), muted = cssVar("--muted");
    var out = Object.assign({}, layout);
    out.paper_bgcolor = "rgba(0,0,0,0)";
    out.plot_bgcolor = "rgba(0,0,0,0)";
    out.font = Object.assign({}, layout.font || {}, { color: text });
    ["xaxis", "yaxis", "xaxis2", "yaxis2"].forEach(function (axis) {
      if (!layout[axis]) return;
      out[axis] = Object.assign({}, layout[axis], { gridcolor: grid, zerolinecolor: grid, linecolor: grid });
      if (layout[axis].rangeselector) {
        out[axis].rangeselector = Object.assign({}, layout[axis].rangeselector, {
          bgcolor: cssVar("--surface-2"), activecolor: cssVar("--border"), font: { color: text }
        });
      }
    });
    if (out.legend) out.legend = Object.assign({}, out.legend, { font: { color: muted } });
    // On a phone the legend would cover the axis: the leaderboard's colour swatches name the lines.
    if (narrow && out.showlegend) {
      out.showlegend = false;
      out.margin = Object.assign({}, out.margin || {}, { b: 40 });
    }
    return out;
  }

  function renderCharts(root, themeChanged) {
    if (typeof Plotly === "undefined") return;
    var islands = (root || document).querySelectorAll('script[type="application/json"][id$="-data"]');
    islands.forEach(function (island) {
      var target = document.getElementById(island.id.slice(0, -5));
      if (!target || !target.classList.contains("chart")) return;
      var text = island.textContent;
      if (!themeChanged && target.dataset.rendered === text) return;
      var figure = JSON.parse(text);
      Plotly.react(target, figure.data || [], themed(figure.layout || {}, target.clientWidth < 560), {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]
      });
      target.dataset.rendered = text;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    updateToggle();
    var button = document.getElementById("theme-toggle");
    if (button) button.addEventListener("click", toggleTheme);
    renderCharts(document, false);
    if (window.matchMedia) {
      var query = window.matchMedia("(prefers-color-scheme: dark)");
      var onChange = function () { if (!storedTheme()) { updateToggle(); renderCharts(document, true); } };
      if (query.addEventListener) query.addEventListener("change", onChange);
    }
  });

  // Live regions brought fresh figures: redraw in place.
  document.addEventListener("htmx:afterSettle", function () { renderCharts(document, false); });

  window.Gauntlet = { renderCharts: renderCharts, toggleTheme: toggleTheme };
})();
