// Draws the report's charts with uPlot from the JSON in <script id="data">. Every name from the
// stream reaches the page through textContent (here and inside uPlot), never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363", "#969696", "#d62728"];
  var sync = uPlot.sync("k6");
  var holder = document.getElementById("charts");
  var range = data.range;
  var plots = [];
  var drawn = 0;

  function width() {
    return Math.max(320, Math.min(holder.clientWidth || 900, 1200) - 16);
  }

  data.charts.forEach(function (chart) {
    var box = document.createElement("section");
    box.className = "chart";
    box.id = "chart-" + chart.id;
    var title = document.createElement("h3");
    title.textContent = chart.title;
    box.appendChild(title);
    var area = document.createElement("div");
    box.appendChild(area);
    holder.appendChild(box);

    var columns = [data.x];
    var series = [{}];
    // the x range is the run's, fixed (one bucket still gets a real axis); a zoom bypasses it
    var scales = { x: { time: true, range: function () { return [range[0], range[1]]; } }, y: {} };
    var limits = chart.series.filter(function (s) { return s.threshold; });
    if (limits.length) {
      // threshold lines widen the y range only up to 3x the data, so they never flatten it
      var top = 0;
      chart.series.forEach(function (s) {
        if (!s.threshold) s.values.forEach(function (v) { if (v != null && v > top) top = v; });
      });
      var ceiling = top * 1.1 || 1;
      limits.forEach(function (s) {
        var v = s.values[0];
        if (v != null && v <= 3 * ceiling && v * 1.1 > ceiling) ceiling = v * 1.1;
      });
      scales.y = { range: function (u, min) { return [Math.min(0, min), ceiling]; } };
    }
    var axes = [{}, { scale: "y", label: chart.unit, size: 60 }];
    var color = 0;
    chart.series.forEach(function (s) {
      var scale = s.scale || "y";
      if (!scales[scale]) {
        scales[scale] = {};
        axes.push({ scale: scale, side: 1, grid: { show: false }, label: scale, size: 50 });
      }
      var above = s.threshold && s.values[0] != null && scales.y.range &&
        s.values[0] > scales.y.range(null, 0)[1];
      series.push({
        label: above ? s.label + " (above the chart)" : s.label,
        scale: scale,
        stroke: s.threshold ? "#d62728" : s.baseline ? "#999999" : palette[color++ % palette.length],
        dash: s.threshold ? [6, 4] : s.baseline ? [2, 3] : undefined,
        width: s.threshold ? 1 : 1.5,
        spanGaps: true,
        points: { show: data.x.length < 4 ? true : undefined, size: 6 }
      });
      columns.push(s.values);
    });
    var plot = new uPlot({
      width: width(),
      height: 240,
      series: series,
      scales: scales,
      axes: axes,
      cursor: { sync: { key: sync.key }, drag: { x: true, y: false } },
      legend: { live: true }
    }, columns, area);
    plots.push(plot);
    box.setAttribute("data-series", String(chart.series.length));
    box.setAttribute("data-points", String(data.x.length));
    box.setAttribute("data-drawn", area.querySelector("canvas") ? "true" : "false");
    drawn += 1;
  });
  holder.setAttribute("data-charts", String(drawn));

  window.addEventListener("resize", function () {
    plots.forEach(function (plot) { plot.setSize({ width: width(), height: 240 }); });
  });

  var link = document.getElementById("download");
  var summary = document.getElementById("summary");
  if (link && summary) {
    link.addEventListener("click", function () {
      var blob = new Blob([summary.textContent], { type: "application/json" });
      link.href = URL.createObjectURL(blob);
    });
  }
  document.body.setAttribute("data-ready", "true");
})();
