/* cosmoskit report: filters, sort and synchronised playback.  Plain JavaScript, no network.
 *
 * The state lives in the URL hash, so a view can be bookmarked or shared and tests can drive it:
 *   #status=completed,failed  &op=transfer  &w.vis=0.2-0.8  &rating=3 (or unrated)
 *   &q=forklift  &sort=newest|oldest|rating|duration|status|w.<control>  &sheets=0  &autoplay=1
 * After each update <html> carries data-shown (runs shown) and data-ready="1".
 */
(function () {
  'use strict';
  var form = document.getElementById('filters');
  var cards = Array.prototype.slice.call(document.querySelectorAll('article.run'));
  var sections = Array.prototype.slice.call(document.querySelectorAll('section.prompt'));
  sections.forEach(function (sec) {
    sec._units = Array.prototype.slice.call(sec.querySelectorAll(':scope > .pbody > .runs > .unit'));
  });
  var STATUS_ORDER = ['completed', 'failed', 'cancelled', 'running', 'fetching', 'staging', 'queued'];

  function parseWeights(text) {
    var out = {};
    (text || '').split(' ').forEach(function (pair) {
      if (!pair) return;
      var i = pair.lastIndexOf(':');
      out[pair.slice(0, i)] = parseFloat(pair.slice(i + 1));
    });
    return out;
  }
  cards.forEach(function (c, i) {
    c._w = parseWeights(c.dataset.w);
    c._rating = +c.dataset.rating || 0;
    c._duration = c.dataset.duration === '' ? -1 : +c.dataset.duration;
    c._section = c.closest('section.prompt');
    c._index = i;
  });
  // each grid of runs, its units (a run with its upscales) in page order, each unit's cards
  var grids = Array.prototype.map.call(document.querySelectorAll('.runs'), function (box) {
    var units = Array.prototype.slice.call(box.children).filter(function (u) { return u.classList.contains('unit'); });
    units.forEach(function (u) { u._cards = Array.prototype.slice.call(u.querySelectorAll('article.run')); });
    return { el: box, units: units };
  });

  // ------------------------------------------------------------------ state <-> hash <-> form
  function defaults() {
    return { status: null, op: null, w: {}, rating: '', q: '', sort: 'newest', sheets: true, autoplay: false };
  }
  function num(text) {
    if (text === undefined || text === null || text === '') return null;
    var v = parseFloat(text);
    return isNaN(v) ? null : v;
  }
  function readHash() {
    var st = defaults();
    var p = new URLSearchParams(location.hash.replace(/^#/, '') || location.search.replace(/^\?/, ''));
    if (p.has('status')) st.status = new Set(p.get('status').split(',').filter(Boolean));
    if (p.has('op')) st.op = new Set(p.get('op').split(',').filter(Boolean));
    p.forEach(function (value, key) {
      if (key.indexOf('w.') === 0) {
        var parts = value.split('-');
        st.w[key.slice(2)] = [num(parts[0]), num(parts.length > 1 ? parts[1] : parts[0])];
      }
    });
    st.rating = p.get('rating') || '';
    st.q = p.get('q') || '';
    st.sort = p.get('sort') || 'newest';
    st.sheets = p.get('sheets') !== '0';
    st.autoplay = p.get('autoplay') === '1';
    return st;
  }
  function writeHash(st) {
    var p = new URLSearchParams();
    if (st.status) p.set('status', Array.from(st.status).join(','));
    if (st.op) p.set('op', Array.from(st.op).join(','));
    Object.keys(st.w).forEach(function (k) {
      var r = st.w[k];
      if (r[0] !== null || r[1] !== null) p.set('w.' + k, (r[0] === null ? '' : r[0]) + '-' + (r[1] === null ? '' : r[1]));
    });
    if (st.rating) p.set('rating', st.rating);
    if (st.q) p.set('q', st.q);
    if (st.sort !== 'newest') p.set('sort', st.sort);
    if (!st.sheets) p.set('sheets', '0');
    if (st.autoplay) p.set('autoplay', '1');
    var text = p.toString();
    history.replaceState(null, '', text ? '#' + text : location.pathname + location.search);
  }
  function boxes(name) { return form ? Array.prototype.slice.call(form.querySelectorAll('input[name="' + name + '"]')) : []; }
  function toForm(st) {
    if (!form) return;
    boxes('status').forEach(function (b) { b.checked = !st.status || st.status.has(b.value); });
    boxes('op').forEach(function (b) { b.checked = !st.op || st.op.has(b.value); });
    Array.prototype.forEach.call(form.querySelectorAll('input[name^="w."]'), function (input) {
      var parts = input.name.split('.');  // w.<control>.min|max
      var r = st.w[parts[1]] || [null, null];
      var v = r[parts[2] === 'min' ? 0 : 1];
      input.value = v === null ? '' : v;
    });
    form.elements.rating.value = st.rating;
    form.elements.q.value = st.q;
    form.elements.sort.value = st.sort;
    if (form.elements.sort.value !== st.sort) form.elements.sort.value = 'newest';
    form.elements.sheets.checked = st.sheets;
    form.elements.autoplay.checked = st.autoplay;
  }
  function fromForm() {
    var st = defaults();
    var sb = boxes('status'), ob = boxes('op');
    var s = sb.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var o = ob.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    if (s.length !== sb.length) st.status = new Set(s);
    if (o.length !== ob.length) st.op = new Set(o);
    Array.prototype.forEach.call(form.querySelectorAll('input[name^="w."]'), function (input) {
      var parts = input.name.split('.');
      var r = st.w[parts[1]] || (st.w[parts[1]] = [null, null]);
      r[parts[2] === 'min' ? 0 : 1] = num(input.value);
    });
    st.rating = form.elements.rating.value;
    st.q = form.elements.q.value;
    st.sort = form.elements.sort.value;
    st.sheets = form.elements.sheets.checked;
    st.autoplay = form.elements.autoplay.checked;
    return st;
  }

  // ------------------------------------------------------------------ filter and sort
  function matches(c, st, weightFilter, q) {
    if (st.status && !st.status.has(c.dataset.status)) return false;
    if (st.op && !st.op.has(c.dataset.op)) return false;
    if (weightFilter) {
      if (!c.dataset.hasWeights) return false;  // runs without control weights (enhance) drop out
      for (var k in st.w) {
        var r = st.w[k], v = c._w[k] || 0;    // a control a run does not use weighs 0
        if ((r[0] !== null && v < r[0] - 1e-9) || (r[1] !== null && v > r[1] + 1e-9)) return false;
      }
    }
    if (st.rating) {
      if (st.rating === 'unrated' ? c._rating !== 0 : c._rating < +st.rating) return false;
    }
    if (q && c.dataset.text.indexOf(q) < 0 && !(c._section && c._section.dataset.text.indexOf(q) >= 0)) return false;
    return true;
  }
  function sortKey(st) {
    var by = st.sort;
    if (by === 'oldest') return function (a, b) { return cmp(a.dataset.created, b.dataset.created); };
    if (by === 'rating') return function (a, b) { return (b._rating - a._rating) || cmp(b.dataset.created, a.dataset.created); };
    if (by === 'duration') return function (a, b) { return (b._duration - a._duration) || cmp(b.dataset.created, a.dataset.created); };
    if (by === 'status') return function (a, b) { return (rank(a.dataset.status) - rank(b.dataset.status)) || cmp(b.dataset.created, a.dataset.created); };
    if (by.indexOf('w.') === 0) {
      var k = by.slice(2);
      return function (a, b) { return ((b._w[k] || 0) - (a._w[k] || 0)) || cmp(b.dataset.created, a.dataset.created); };
    }
    return function (a, b) { return cmp(b.dataset.created, a.dataset.created); };
  }
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  function rank(s) { var i = STATUS_ORDER.indexOf(s); return i < 0 ? 99 : i; }

  function apply(st) {
    var weightFilter = Object.keys(st.w).some(function (k) { return st.w[k][0] !== null || st.w[k][1] !== null; });
    var q = st.q.toLowerCase().trim();
    var active = !!(st.status || st.op || weightFilter || st.rating || q);
    var shown = 0;
    cards.forEach(function (c) {
      var ok = matches(c, st, weightFilter, q);
      if (c.hidden === ok) c.hidden = !ok;  // touch the DOM only on a change
      if (ok) shown++;
    });
    var byKey = sortKey(st);
    grids.forEach(function (box) {
      box.units.forEach(function (u) {
        var visible = 0;
        u._cards.forEach(function (c) { if (!c.hidden) visible++; });
        if (u.hidden !== (visible === 0)) u.hidden = visible === 0;
        if (u._cards.length > 1 && u._visible !== visible) {
          u.classList.toggle('pair', visible > 1);
          u.style.gridColumn = visible > 1 ? 'span 2' : '';
        }
        u._visible = visible;
      });
      var sorted = box.units.slice().sort(function (a, b) {
        return byKey(a._cards[0], b._cards[0]) || (a._cards[0]._index - b._cards[0]._index);
      });
      var same = sorted.every(function (u, i) { return u === box.units[i]; });
      if (!same) {  // move nodes only when the order changes
        sorted.forEach(function (u) { box.el.appendChild(u); });
        box.units = sorted;
      }
    });
    // deepest first: an enhanced prompt sits inside its parent's section
    sections.slice().reverse().forEach(function (sec) {
      var own = sec._units.some(function (u) { return !u.hidden; });
      var child = sec.querySelector(':scope > .children > section.prompt:not([hidden])');
      var textHit = q && sec.dataset.text.indexOf(q) >= 0 && !(st.status || st.op || weightFilter || st.rating);
      var hide = !!(active && !own && !child && !textHit);
      if (sec.hidden !== hide) sec.hidden = hide;
    });
    document.body.classList.toggle('nosheets', !st.sheets);
    var out = document.getElementById('shown');
    if (out) out.textContent = shown + ' of ' + cards.length + ' runs';
    document.documentElement.setAttribute('data-shown', String(shown));
    document.documentElement.setAttribute('data-ready', '1');
    setAutoplay(st.autoplay);
  }

  // ------------------------------------------------------------------ synchronised playback
  var playing = new Map();
  // the thumbnails of a section's own inputs and runs that the filters leave on the page, as <video> elements
  function videosOf(sec) {
    var tiles = sec.querySelectorAll(':scope > .pbody a.playable, :scope > .pbody video');
    return Array.prototype.slice.call(tiles).filter(function (t) { return !t.closest('[hidden]'); }).map(videoFor);
  }
  function videoFor(tile) {
    if (tile.tagName === 'VIDEO') return tile;
    var v = document.createElement('video');
    var img = tile.querySelector('img');
    v.src = tile.getAttribute('data-video');
    if (img) { v.poster = img.getAttribute('src'); v.setAttribute('aria-label', img.alt); }
    v.muted = true; v.loop = true; v.playsInline = true; v.preload = 'auto';
    v.setAttribute('muted', ''); v.setAttribute('loop', ''); v.setAttribute('playsinline', '');
    tile.parentNode.replaceChild(v, tile);
    return v;
  }
  function button(sec) { return sec.querySelector(':scope > .phead [data-play]'); }
  function play(sec) {
    if (playing.has(sec)) return;
    var vids = videosOf(sec);
    if (!vids.length) return;
    var group = { vids: vids, leader: vids[0], timer: 0 };
    playing.set(sec, group);
    vids.forEach(function (v) {
      v.addEventListener('loadedmetadata', function () { group.leader = longest(group.vids); });
      try { v.currentTime = 0; } catch (e) { /* not loaded yet */ }
      var p = v.play();
      if (p && p.catch) p.catch(function () {});
    });
    sec.classList.add('playing');
    var b = button(sec);
    if (b) b.textContent = '❚❚ pause';
    group.timer = setInterval(function () { tick(group); }, 50);
  }
  function longest(vids) {
    return vids.reduce(function (a, v) { return (v.duration || 0) > (a.duration || 0) ? v : a; }, vids[0]);
  }
  // a timer, not requestAnimationFrame: it keeps running where frames are not drawn (hidden tabs, headless)
  function tick(group) {
    var lead = group.leader;
    if (lead.paused || lead.readyState < 2) return;
    var t = lead.currentTime;
    group.vids.forEach(function (v) {
      if (v === lead || !v.duration || v.seeking) return;
      var want = t % v.duration;
      var off = Math.abs(v.currentTime - want);
      if (Math.min(off, v.duration - off) > 0.1) v.currentTime = want;
      if (v.paused) { var p = v.play(); if (p && p.catch) p.catch(function () {}); }
    });
  }
  function stop(sec) {
    var group = playing.get(sec);
    if (!group) return;
    clearInterval(group.timer);
    group.vids.forEach(function (v) { v.pause(); });
    playing.delete(sec);
    sec.classList.remove('playing');
    var b = button(sec);
    if (b) b.textContent = '▶ play side by side';
  }
  function toggle(sec) { if (playing.has(sec)) stop(sec); else play(sec); }

  document.addEventListener('click', function (ev) {
    var t = ev.target;
    var b = t.closest && t.closest('[data-play]');
    if (b) { toggle(b.closest('section.prompt')); return; }
    var tile = t.closest && (t.tagName === 'VIDEO' ? t : t.closest('a.playable'));
    if (tile) {
      ev.preventDefault();  // play in place instead of opening the preview
      var sec = tile.closest('section.prompt');
      if (sec) toggle(sec);
    }
  });

  var observer = null;
  function setAutoplay(on) {
    if (!('IntersectionObserver' in window)) return;
    if (on && !observer) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (en) { if (en.isIntersecting) play(en.target); else stop(en.target); });
      }, { threshold: 0.05 });
      sections.forEach(function (sec) { observer.observe(sec); });
    } else if (!on && observer) {
      observer.disconnect();
      observer = null;
      Array.from(playing.keys()).forEach(stop);
    }
  }

  // ------------------------------------------------------------------ wiring
  function update() { var st = fromForm(); writeHash(st); apply(st); }
  if (form) {
    form.addEventListener('input', update);
    form.addEventListener('change', update);
    var reset = document.getElementById('reset');
    if (reset) reset.addEventListener('click', function () { var st = defaults(); toForm(st); writeHash(st); apply(st); });
  }
  window.addEventListener('hashchange', function () { var st = readHash(); toForm(st); apply(st); });
  var initial = readHash();
  toForm(initial);
  apply(initial);
  window.cosmoskitReport = { state: readHash, apply: function (st) { toForm(st); apply(st); }, play: play, stop: stop };
})();
