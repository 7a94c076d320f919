// The interactive map: the stored 2-D layout drawn on a canvas, coloured by topic.
// Hover a dot: its title; click it: the paper. Liked papers are ringed. No dependencies.
(function () {
  "use strict";
  var canvas = document.getElementById("map");
  if (!canvas) return;
  var tip = document.getElementById("map-tip");
  var legend = document.getElementById("map-legend");
  var data = null;
  var hover = -1;
  var size = { w: 0, h: 0, pad: 16, r: 4 };

  function px(i) { return size.pad + (data.x[i] + 1) / 2 * (size.w - 2 * size.pad); }
  function py(i) { return size.pad + (1 - data.y[i]) / 2 * (size.h - 2 * size.pad); }
  function colour(i) {
    var t = data.topic[i];
    return t >= 0 ? data.topics[t].colour : data.other_colour;
  }

  function resize() {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.parentElement.clientWidth;
    size.w = width;
    size.h = Math.min(Math.round(width * 0.8), Math.round(window.innerHeight * 0.8));
    size.r = Math.max(2.5, Math.min(6, 900 / Math.sqrt(data.x.length + 1) / 4));
    canvas.style.width = size.w + "px";
    canvas.style.height = size.h + "px";
    canvas.width = Math.round(size.w * ratio);
    canvas.height = Math.round(size.h * ratio);
    canvas.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
    draw();
  }

  function dot(ctx, i, r) {
    ctx.beginPath();
    ctx.arc(px(i), py(i), r, 0, 2 * Math.PI);
  }

  function draw() {
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, size.w, size.h);
    var n = data.x.length, i;
    for (i = 0; i < n; i++) {  // the uncoloured first, so topics stay on top
      if (data.topic[i] >= 0) continue;
      ctx.fillStyle = colour(i); dot(ctx, i, size.r); ctx.fill();
    }
    for (i = 0; i < n; i++) {
      if (data.topic[i] < 0) continue;
      ctx.fillStyle = colour(i); dot(ctx, i, size.r); ctx.fill();
    }
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#111";
    for (i = 0; i < n; i++) {
      if (data.liked[i]) { dot(ctx, i, size.r + 3); ctx.stroke(); }
    }
    if (hover >= 0) {
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#000";
      ctx.fillStyle = colour(hover);
      dot(ctx, hover, size.r + 2); ctx.fill(); ctx.stroke();
    }
  }

  function nearest(event) {
    var box = canvas.getBoundingClientRect();
    var x = event.clientX - box.left, y = event.clientY - box.top;
    var best = -1, bestD = (size.r + 5) * (size.r + 5);
    for (var i = 0; i < data.x.length; i++) {
      var dx = px(i) - x, dy = py(i) - y, d = dx * dx + dy * dy;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }

  function showTip(i) {
    if (i < 0) { tip.hidden = true; canvas.style.cursor = "default"; return; }
    var t = data.topic[i];
    tip.textContent = data.title[i] + (t >= 0 ? " — " + data.topics[t].name : "") +
      (data.liked[i] ? " (liked)" : "");
    tip.style.left = Math.min(px(i) + 12, size.w - 260) + "px";
    tip.style.top = (py(i) + 12) + "px";
    tip.hidden = false;
    canvas.style.cursor = "pointer";
  }

  canvas.addEventListener("mousemove", function (event) {
    var i = nearest(event);
    if (i !== hover) { hover = i; draw(); showTip(i); }
  });
  canvas.addEventListener("mouseleave", function () { hover = -1; draw(); showTip(-1); });
  canvas.addEventListener("click", function (event) {
    var i = nearest(event);
    if (i >= 0) window.location.href = "/papers/" + encodeURI(data.id[i]);
  });

  function fillLegend() {
    data.topics.forEach(function (t) {
      var li = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = t.colour;
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(t.name + " (" + t.papers + ")"));
      legend.appendChild(li);
    });
  }

  fetch(canvas.getAttribute("data-src"), { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (json) {
      if (!json.ok || !json.available) return;
      data = json;
      fillLegend();
      resize();
      canvas.setAttribute("data-ready", "true");
      window.addEventListener("resize", resize);
    });
})();
