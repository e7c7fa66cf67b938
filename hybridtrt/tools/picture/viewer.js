(function () {
  var svg = document.querySelector('#viewport svg');
  var groups = {};
  svg.querySelectorAll('g.node').forEach(function (g) {
    var name = g.getAttribute('data-group');
    if (name) { groups[name] = true; }
  });
  var count = Object.keys(groups).length;
  document.getElementById('engine-count').textContent =
    count + (count === 1 ? ' engine' : ' engines');
  var viewport = document.getElementById('viewport');
  var label = document.getElementById('zoom-level');
  var baseW = svg.viewBox.baseVal.width, baseH = svg.viewBox.baseVal.height;
  var zoom = 1;
  function setZoom(z, clientX, clientY) {
    z = Math.min(4, Math.max(0.05, z));
    var rect = viewport.getBoundingClientRect();
    var px = clientX === undefined ? viewport.clientWidth / 2 : clientX - rect.left;
    var py = clientY === undefined ? viewport.clientHeight / 2 : clientY - rect.top;
    var fx = (viewport.scrollLeft + px) / zoom, fy = (viewport.scrollTop + py) / zoom;
    zoom = z;
    svg.setAttribute('width', Math.round(baseW * z));
    svg.setAttribute('height', Math.round(baseH * z));
    viewport.scrollLeft = fx * z - px;
    viewport.scrollTop = fy * z - py;
    label.textContent = Math.round(z * 100) + '%';
  }
  function fit() {
    setZoom(Math.min(1, (viewport.clientWidth - 4) / baseW));
    viewport.scrollTop = 0;
  }
  document.getElementById('zoom-in').onclick = function () { setZoom(zoom * 1.25); };
  document.getElementById('zoom-out').onclick = function () { setZoom(zoom / 1.25); };
  document.getElementById('zoom-fit').onclick = fit;
  document.getElementById('zoom-reset').onclick = function () { setZoom(1); };
  viewport.addEventListener('wheel', function (e) {
    if (!e.ctrlKey && !e.metaKey && !e.altKey) { return; }
    e.preventDefault();
    setZoom(zoom * Math.exp(-e.deltaY * 0.0015), e.clientX, e.clientY);
  }, {passive: false});
  document.addEventListener('keydown', function (e) {
    if (e.key === '+' || e.key === '=') { setZoom(zoom * 1.25); }
    else if (e.key === '-' || e.key === '_') { setZoom(zoom / 1.25); }
    else if (e.key === '0') { fit(); }
  });
  var drag = null;
  viewport.addEventListener('mousedown', function (e) {
    drag = {x: e.clientX, y: e.clientY, left: viewport.scrollLeft, top: viewport.scrollTop};
    viewport.classList.add('dragging');
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) { return; }
    viewport.scrollLeft = drag.left - (e.clientX - drag.x);
    viewport.scrollTop = drag.top - (e.clientY - drag.y);
  });
  window.addEventListener('mouseup', function () {
    drag = null;
    viewport.classList.remove('dragging');
  });
  function start() {
    // Open where the partition is interesting: the topmost node kept in ONNX Runtime.
    var first = null, top = Infinity;
    svg.querySelectorAll('g.node[data-group=""]').forEach(function (g) {
      var y = g.getBoundingClientRect().top;
      if (y < top) { top = y; first = g; }
    });
    if (!first) { return; }
    var box = first.getBoundingClientRect(), view = viewport.getBoundingClientRect();
    viewport.scrollTop += box.top - view.top - viewport.clientHeight / 3;
    viewport.scrollLeft += box.left - view.left + box.width / 2 - viewport.clientWidth / 2;
    viewport.setAttribute('data-start', first.getAttribute('data-name'));
    viewport.setAttribute('data-start-top', String(Math.round(viewport.scrollTop)));
  }
  fit();
  start();
})();
