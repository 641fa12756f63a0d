// Reader page: one image at a time, zoom and pan, real/synthetic + confidence + optional grade.
// The token is the last part of the page's path (/r/<token>); every call goes to /api/r/<token>/...
'use strict';
(function () {
  const token = location.pathname.split('/').filter(Boolean).pop();
  const api = '/api/r/' + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  const view = $('view'), photo = $('photo');
  let item = null, call = null, confidence = null, busy = false, mode = 'ask';
  let zoom = 1, panX = 0, panY = 0, drag = null;

  function show(name) {
    mode = name;
    for (const id of ['ask', 'feedback', 'done']) $(id).hidden = (id !== name);
  }
  function status(text) { $('status').textContent = text || ''; }

  // Zoom and pan: an image starts at full resolution (1:1), shrunk only if it does not fit the viewport (never
  // enlarged, which would blur fine detail); zoom keeps the point under the cursor fixed.
  function center(scale) {
    if (!photo.naturalWidth) return;
    zoom = scale;
    panX = (view.clientWidth - photo.naturalWidth * zoom) / 2;
    panY = (view.clientHeight - photo.naturalHeight * zoom) / 2;
    place();
  }
  function fitScale() { return Math.min(view.clientWidth / photo.naturalWidth, view.clientHeight / photo.naturalHeight); }
  function fit() { center(Math.min(1, fitScale())); }
  function place() { photo.style.transform = `translate(${panX}px, ${panY}px) scale(${zoom})`; }
  function zoomBy(factor, cx, cy) {
    const x = cx === undefined ? view.clientWidth / 2 : cx, y = cy === undefined ? view.clientHeight / 2 : cy;
    const next = Math.min(16, Math.max(0.05, zoom * factor));
    panX = x - (x - panX) * next / zoom; panY = y - (y - panY) * next / zoom; zoom = next;
    place();
  }
  view.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = view.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  view.addEventListener('mousedown', (e) => { drag = [e.clientX - panX, e.clientY - panY]; view.classList.add('dragging'); });
  window.addEventListener('mousemove', (e) => { if (drag) { panX = e.clientX - drag[0]; panY = e.clientY - drag[1]; place(); } });
  window.addEventListener('mouseup', () => { drag = null; view.classList.remove('dragging'); });
  view.addEventListener('dblclick', fit);
  photo.addEventListener('load', fit);
  window.addEventListener('resize', fit);

  function choose(kind, value) {
    if (mode !== 'ask' || !item) return;
    if (kind === 'call') call = value; else confidence = value;
    document.querySelectorAll('[data-call]').forEach((b) => b.classList.toggle('chosen', b.dataset.call === call));
    document.querySelectorAll('[data-confidence]').forEach((b) => b.classList.toggle('chosen', Number(b.dataset.confidence) === confidence));
    $('submit').disabled = !(call && confidence);
  }

  function progress(answered, total) {
    $('bar').max = total || 1; $('bar').value = answered;
  }

  async function request(path, options) {
    const response = await fetch(api + path, Object.assign({ cache: 'no-store' }, options || {}));
    const body = await response.json().catch(() => ({ error: 'unreadable reply' }));
    return [response.status, body];
  }

  async function next() {
    busy = true;
    try {
      const [code, body] = await request('/next');
      if (code !== 200) { status(body.error || 'error ' + code); return; }
      if (body.done) {
        item = null; photo.removeAttribute('src'); show('done');
        if (body.closed) $('done-text').textContent = 'The study has been closed by its coordinator: thank you.';
        $('where').textContent = 'All done'; $('practice-badge').hidden = true;
        const [, p] = await request('/progress'); progress(p.answered, p.total);
        return;
      }
      item = body; call = null; confidence = null; choose('call', null);
      $('grade').value = '';
      photo.src = body.image_url;
      $('where').textContent = `Image ${body.position} of ${body.total}`;
      $('practice-badge').hidden = !body.practice;
      progress(body.position - 1, body.total);
      show('ask'); status('');
    } catch (e) { status('The server cannot be reached; your answers so far are saved. Reload to continue.'); }
    finally { busy = false; }
  }

  async function submit() {
    if (busy || mode !== 'ask' || !item || !call || !confidence) return;
    busy = true;
    const grade = $('grade').value === '' ? null : Number($('grade').value);
    try {
      const [code, body] = await request('/answer', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ image_id: item.image_id, call: call, confidence: confidence, grade: grade }),
      });
      busy = false;
      if (code === 409 && /already answered/.test(body.error || '')) return next();
      if (code !== 200) { status(body.error || 'error ' + code); return; }
      progress(body.answered, body.total);
      if (item.practice) {
        const text = $('feedback-text');
        text.textContent = body.correct ? `Correct: this image is ${body.truth}.` : `Not quite: this image is ${body.truth}.`;
        text.className = body.correct ? 'correct' : 'wrong';
        show('feedback');
      } else {
        next();
      }
    } catch (e) { busy = false; status('The answer could not be sent; please submit again.'); }
  }

  document.querySelectorAll('[data-call]').forEach((b) => b.addEventListener('click', () => choose('call', b.dataset.call)));
  document.querySelectorAll('[data-confidence]').forEach((b) => b.addEventListener('click', () => choose('confidence', Number(b.dataset.confidence))));
  $('submit').addEventListener('click', submit);
  $('continue').addEventListener('click', () => { if (mode === 'feedback') next(); });

  function cycleGrade() {
    const g = $('grade'); g.selectedIndex = (g.selectedIndex + 1) % g.options.length;
  }
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.target.tagName === 'SELECT') {
      if (e.key === 'Enter' && e.target.tagName === 'SELECT') { e.preventDefault(); submit(); }
      return;
    }
    const k = e.key.toLowerCase();
    if (k === 'enter') { e.preventDefault(); if (mode === 'feedback') next(); else submit(); }
    else if (k === 'r') choose('call', 'real');
    else if (k === 's') choose('call', 'synthetic');
    else if (/^[1-5]$/.test(k)) choose('confidence', Number(k));
    else if (k === 'g') cycleGrade();
    else if (k === '+' || k === '=') zoomBy(1.25);
    else if (k === '-') zoomBy(1 / 1.25);
    else if (k === '0') center(1);
    else if (k === 'f') center(fitScale());
  });

  next();
})();
