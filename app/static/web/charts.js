// The account page's year of score history: uPlot (vendored), band zones and markers.
// Data come from data-* attributes (no inline script: the CSP is 'self').
(function () {
  "use strict";
  var node = document.getElementById("history-chart");
  if (!node || !window.uPlot) { return; }
  var days = JSON.parse(node.dataset.days || "[]");
  var scores = JSON.parse(node.dataset.scores || "[]");
  var markers = JSON.parse(node.dataset.markers || "[]");
  var good = parseFloat(node.dataset.good), poor = parseFloat(node.dataset.poor);
  if (days.length === 0) { node.textContent = "No score history yet."; return; }

  function zones(u) {
    // Band zones behind the line: poor below `poor`, good from `good`.
    var ctx = u.ctx, left = u.bbox.left, width = u.bbox.width;
    var bands = [[0, poor, "rgba(200, 40, 40, 0.10)"], [poor, good, "rgba(220, 160, 0, 0.10)"], [good, 100, "rgba(30, 140, 60, 0.10)"]];
    ctx.save();
    bands.forEach(function (b) {
      var top = u.valToPos(b[1], "y", true), bottom = u.valToPos(b[0], "y", true);
      ctx.fillStyle = b[2];
      ctx.fillRect(left, top, width, bottom - top);
    });
    ctx.restore();
  }

  function marks(u) {
    var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    var colors = { c: "#5b3fa8", e: "#a4331f", p: "#1f5fa4" };
    ctx.save();
    ctx.font = (11 * devicePixelRatio) + "px sans-serif";
    markers.forEach(function (m) {
      var x = u.valToPos(m.at, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
      ctx.strokeStyle = colors[m.kind] || "#333";
      ctx.fillStyle = ctx.strokeStyle;
      ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      ctx.fillText(m.kind, x + 2, top + 10 * devicePixelRatio);
    });
    ctx.restore();
  }

  var width = Math.max(320, Math.min(node.clientWidth || 900, 1100));
  new window.uPlot({
    width: width,
    height: 260,
    scales: { y: { range: [0, 100] } },
    series: [{}, { label: "Score", stroke: "#1d3f72", width: 2, spanGaps: false }],
    axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return v.toFixed(0); }); } }],
    hooks: { drawClear: [zones], draw: [marks] },
    legend: { show: true }
  }, [days, scores], node);
})();
