/* cosmoskit ui: live updates, actions, selections, synced playback, the sweep builder.
 * Plain JavaScript, no library, no network but this server.
 *
 * Live updates: one EventSource on /events says which topics changed (ledger, plan, progress, hosts);
 * each [data-live] region whose data-topics names one is fetched again with "X-Fragment: live" and
 * swapped in.  After a drop the browser reconnects (and we recreate the stream if it gave up); the
 * "hello" message carries the server's versions, so what was missed is fetched at once.
 * For tests and people, <html> carries data-sse-connects (streams opened) and data-live-state.
 */
(function () {
  'use strict';
  var html = document.documentElement;
  var csrf = (document.querySelector('meta[name=csrf]') || {}).content || '';
  var versions = {};
  try { versions = JSON.parse(html.dataset.versions || '{}'); } catch (e) { versions = {}; }
  var selections = {};  // group -> Set of selected ids, kept across refreshes

  // ---------------------------------------------------------------- flash messages
  var flashTimer = 0;
  function flash(text, bad) {
    var box = document.getElementById('flash');
    if (!box) return;
    box.textContent = text;
    box.className = bad ? 'bad' : 'good';
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { box.hidden = true; }, bad ? 12000 : 5000);
  }

  // ---------------------------------------------------------------- live regions
  function regions(topic) {
    return Array.prototype.filter.call(document.querySelectorAll('[data-live]'), function (el) {
      return !topic || (el.dataset.topics || 'ledger').split(' ').indexOf(topic) >= 0;
    });
  }
  function refresh(el) {
    if (el._busy) { el._again = true; return; }
    var active = document.activeElement;
    if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      // someone is typing in it: try again shortly instead of wiping their input
      el._again = true;
      setTimeout(function () { if (el._again && !el._busy) { el._again = false; refresh(el); } }, 1500);
      return;
    }
    el._busy = true;
    el._again = false;
    fetch(location.pathname + location.search, { headers: { 'X-Fragment': 'live' }, cache: 'no-store' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(function (text) { swap(el, text); })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        el._busy = false;
        if (el._again) refresh(el);
      });
  }
  // rows and cards that did not change stay the same nodes: their images are not fetched again
  function keep(el, fresh) {
    var old = {};
    Array.prototype.forEach.call(el.querySelectorAll('[data-run]'), function (n) { old[n.tagName + n.dataset.run] = n; });
    Array.prototype.forEach.call(fresh.querySelectorAll('[data-run]'), function (n) {
      var same = old[n.tagName + n.dataset.run];
      if (same && same.outerHTML === n.outerHTML && !same.contains(n)) n.replaceWith(same);
    });
  }
  function swap(el, text) {
    var old = el.querySelector('[data-reload-sig]');
    var tpl = document.createElement('template');
    tpl.innerHTML = text;
    var fresh = tpl.content.querySelector('[data-reload-sig]');
    if (old && fresh && old.dataset.reloadSig !== fresh.dataset.reloadSig && !playingAny()) {
      // new outputs (a run finished): the videos outside the live part must be loaded again
      location.reload();
      return;
    }
    keep(el, tpl.content);
    el.replaceChildren(tpl.content);
    restoreSelections(el);
    startLogStreams(el);
    html.dataset.refreshes = String((+html.dataset.refreshes || 0) + 1);
  }

  // ---------------------------------------------------------------- the change feed
  var source = null;
  function setState(state, text) {
    html.dataset.liveState = state;
    var badge = document.getElementById('live-state');
    if (badge) { badge.dataset.state = state; badge.textContent = text; }
  }
  function connect() {
    if (source) source.close();
    source = new EventSource('/events');
    source.addEventListener('hello', function (ev) {
      var data = JSON.parse(ev.data);
      html.dataset.sseConnects = String(data.connects);
      html.dataset.sseOpened = String((+html.dataset.sseOpened || 0) + 1);
      setState('live', 'live');
      var missed = Object.keys(data.versions).filter(function (t) { return versions[t] !== undefined && versions[t] !== data.versions[t]; });
      versions = data.versions;
      missed.forEach(function (t) { regions(t).forEach(refresh); });
    });
    ['ledger', 'plan', 'progress', 'hosts'].forEach(function (topic) {
      source.addEventListener(topic, function (ev) {
        versions[topic] = JSON.parse(ev.data).version;
        html.dataset.events = String((+html.dataset.events || 0) + 1);
        regions(topic).forEach(refresh);
        if (topic === 'ledger') refreshNav();
      });
    });
    source.onerror = function () {
      setState('reconnecting', 'reconnecting…');
      if (source.readyState === EventSource.CLOSED) {  // the browser gave up (the server was down): start again
        setTimeout(connect, 1000);
      }
    };
  }
  var navBusy = false;
  function refreshNav() {
    // the figures in the header: a page's own live region does not hold them
    if (navBusy) return;
    navBusy = true;
    fetch('/api/status', { cache: 'no-store' }).then(function (r) { return r.json(); })
      .then(function (s) {
        var nq = document.getElementById('nav-queued');
        var nr = document.getElementById('nav-running');
        var pill = document.getElementById('paused-pill');
        if (nq) nq.textContent = String(s.queued);
        if (nr) nr.textContent = String(s.running);
        if (pill) pill.hidden = !s.paused;
      }).catch(function () {}).then(function () { navBusy = false; });
  }

  // ---------------------------------------------------------------- a running batch's log
  function startLogStreams(root) {
    Array.prototype.forEach.call(root.querySelectorAll('[data-log-stream]'), function (pre) {
      openLog(pre, pre.dataset.logStream);
    });
  }
  var logs = new Map();  // <pre> -> EventSource
  function openLog(pre, batch) {
    logs.forEach(function (es, el) { if (!document.contains(el)) { es.close(); logs.delete(el); } });
    if (logs.has(pre)) return;
    var es = new EventSource('/events/log/' + encodeURIComponent(batch));
    logs.set(pre, es);
    pre.dataset.streamState = 'open';
    es.addEventListener('lines', function (ev) {
      var lines = JSON.parse(ev.data);
      if (!lines.length) return;
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(lines.join('\n') + '\n'));
      pre.dataset.lines = String((+pre.dataset.lines || 0) + lines.length);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    es.addEventListener('end', function () { pre.dataset.streamState = 'ended'; es.close(); logs.delete(pre); });
    es.onerror = function () {
      if (es.readyState !== EventSource.CLOSED) return;  // the browser reconnects by itself
      pre.dataset.streamState = 'closed';
      logs.delete(pre);
    };
  }
  document.addEventListener('click', function (ev) {
    var open = ev.target.closest && ev.target.closest('[data-open-log]');
    if (open) {
      var panel = document.getElementById('logpanel');
      var pre = document.getElementById('log-lines');
      if (!panel || !pre) return;
      logs.forEach(function (es, el) { if (el === pre) { es.close(); logs.delete(el); } });
      pre.textContent = '';
      pre.dataset.lines = '0';
      document.getElementById('log-batch').textContent = open.dataset.openLog;
      panel.hidden = false;
      openLog(pre, open.dataset.openLog);
      return;
    }
    var close = ev.target.closest && ev.target.closest('[data-close-log]');
    if (close) {
      var p = document.getElementById('log-lines');
      logs.forEach(function (es, el) { if (el === p) { es.close(); logs.delete(el); } });
      document.getElementById('logpanel').hidden = true;
    }
  });

  // ---------------------------------------------------------------- selections
  function group(name) { return selections[name] || (selections[name] = new Set()); }
  function restoreSelections(root) {
    Array.prototype.forEach.call(root.querySelectorAll('input[name=sel][data-group]'), function (box) {
      box.checked = group(box.dataset.group).has(box.value);
    });
    countSelections();
  }
  function countSelections() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-selection]'), function (form) {
      var n = group(form.dataset.selection).size;
      Array.prototype.forEach.call(form.querySelectorAll('[data-selected-count]'), function (c) { c.textContent = String(n); });
    });
  }
  document.addEventListener('change', function (ev) {
    var box = ev.target;
    if (box.name === 'sel' && box.dataset.group) {
      if (box.checked) group(box.dataset.group).add(box.value); else group(box.dataset.group).delete(box.value);
      countSelections();
    } else if (box.dataset && box.dataset.selectAll) {
      Array.prototype.forEach.call(document.querySelectorAll('input[name=sel][data-group="' + box.dataset.selectAll + '"]'), function (b) {
        b.checked = box.checked;
        if (box.checked) group(b.dataset.group).add(b.value); else group(b.dataset.group).delete(b.value);
      });
      countSelections();
    }
  });

  // ---------------------------------------------------------------- actions
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (form.hasAttribute('data-compare')) {
      ev.preventDefault();
      var ids = Array.from(group('runs'));
      if (ids.length) location.href = '/compare?ids=' + ids.map(encodeURIComponent).join(',');
      else flash('Select two or more runs to compare.', true);
      return;
    }
    if (!form.hasAttribute('data-action')) return;
    ev.preventDefault();
    var submitter = ev.submitter || null;
    var url = (submitter && submitter.getAttribute('formaction')) || form.getAttribute('action');
    var body;
    if (form.hasAttribute('data-upload')) {
      body = new FormData();
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.disabled) return;
        if (el.type === 'file') {
          Array.prototype.forEach.call(el.files, function (f) { body.append(el.name, f, f.webkitRelativePath || f.name); });
        } else body.append(el.name, el.value);
      });
    } else {
      body = new FormData(form, submitter);
    }
    if (form.dataset.selection) {
      var chosen = Array.from(group(form.dataset.selection));
      if (!chosen.length) { flash('Select runs first.', true); return; }
      body.append('ids', chosen.join(','));
    }
    var buttons = form.querySelectorAll('button');
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    form.dataset.state = 'sending';
    fetch(url, { method: 'POST', body: body, headers: { 'X-CSRF-Token': csrf, 'X-Requested-With': 'fetch' } })
      .then(function (r) { return r.json().catch(function () { return { ok: false, error: 'HTTP ' + r.status }; }); })
      .then(function (answer) {
        form.dataset.state = answer.ok ? 'done' : 'failed';
        if (!answer.ok) { flash(answer.error || 'failed', true); return; }
        flash(answer.message || 'done', false);
        if (form.dataset.selection) { group(form.dataset.selection).clear(); countSelections(); }
        if (answer.redirect) { location.href = answer.redirect; return; }
        if (answer.rating !== undefined) markStars(form, answer.rating);
        regions().forEach(refresh);
      })
      .catch(function (err) { form.dataset.state = 'failed'; flash('the server did not answer: ' + err, true); })
      .then(function () { Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; }); });
  });
  function markStars(form, rating) {
    Array.prototype.forEach.call(form.querySelectorAll('[data-star]'), function (b) {
      b.classList.toggle('on', (+rating || 0) >= +b.dataset.star);
    });
  }

  // ---------------------------------------------------------------- synced playback
  function playingAny() { return Array.prototype.some.call(document.querySelectorAll('[data-sync]'), function (s) { return s._timer; }); }
  function setupSync(box) {
    var vids = Array.prototype.slice.call(box.querySelectorAll('video'));
    var play = box.querySelector('[data-sync-play]');
    var seek = box.querySelector('[data-sync-seek]');
    var time = box.querySelector('[data-sync-time]');
    if (!vids.length) { if (play) play.disabled = true; return; }
    function leader() { return vids.reduce(function (a, v) { return (v.duration || 0) > (a.duration || 0) ? v : a; }, vids[0]); }
    function tick() {
      var lead = leader();
      if (!lead.duration) return;
      var t = lead.currentTime;
      vids.forEach(function (v) {
        if (v === lead || !v.duration || v.seeking) return;
        var want = t % v.duration;
        var off = Math.abs(v.currentTime - want);
        if (Math.min(off, v.duration - off) > 0.1) v.currentTime = want;
        if (v.paused && !lead.paused) { var p = v.play(); if (p && p.catch) p.catch(function () {}); }
      });
      if (seek && !seek._dragging) seek.value = String(Math.round(1000 * t / lead.duration));
      if (time) time.textContent = t.toFixed(1) + ' s';
      box.dataset.time = t.toFixed(2);
    }
    function start() {
      vids.forEach(function (v) { var p = v.play(); if (p && p.catch) p.catch(function () {}); });
      box._timer = setInterval(tick, 50);  // a timer: it runs where frames are not drawn (headless, hidden tabs)
      box.dataset.playing = '1';
      play.textContent = '❚❚ pause';
    }
    function stop() {
      vids.forEach(function (v) { v.pause(); });
      clearInterval(box._timer);
      box._timer = 0;
      box.dataset.playing = '0';
      play.textContent = '▶ play together';
      tick();
    }
    play.addEventListener('click', function () { if (box._timer) stop(); else start(); });
    if (seek) {
      seek.addEventListener('input', function () {
        seek._dragging = true;
        var lead = leader();
        if (!lead.duration) return;
        var t = (+seek.value / 1000) * lead.duration;
        vids.forEach(function (v) { if (v.duration) v.currentTime = t % v.duration; });
        if (time) time.textContent = t.toFixed(1) + ' s';
      });
      seek.addEventListener('change', function () { seek._dragging = false; });
    }
    vids.forEach(function (v) { v.addEventListener('click', function () { if (box._timer) stop(); else start(); }); });
  }

  // ---------------------------------------------------------------- the sweep builder
  function setupSweep(form) {
    var sets = form.querySelector('[data-sets]');
    var out = form.querySelector('#estimate');
    var timer = 0;
    var seq = 0;
    function renumber() {
      Array.prototype.forEach.call(sets.querySelectorAll('.wset'), function (fs, i) {
        fs.querySelector('[data-set-number]').textContent = String(i + 1);
      });
    }
    function estimate() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        out.dataset.state = 'asking';
        fetch(form.dataset.estimate, { method: 'POST', body: new FormData(form), headers: { 'X-CSRF-Token': csrf, 'X-Requested-With': 'fetch' } })
          .then(function (r) { return r.json(); })
          .then(function (a) {
            if (mine !== seq) return;
            out.textContent = a.ok ? a.message : a.error;
            out.className = 'estimate' + (a.ok ? '' : ' error');
            out.dataset.runs = a.ok ? String(a.runs) : '';
            out.dataset.state = 'ready';
          }).catch(function () {});
      }, 250);
    }
    form.addEventListener('input', function (ev) {
      if (ev.target.type === 'range') {
        var o = ev.target.parentNode.querySelector('output');
        if (o) o.textContent = (+ev.target.value).toFixed(2);
      }
      estimate();
    });
    form.querySelector('[data-add-set]').addEventListener('click', function () {
      var all = sets.querySelectorAll('.wset');
      var last = all[all.length - 1];
      var next = 1 + Math.max.apply(null, Array.prototype.map.call(all, function (f) { return +f.dataset.set; }));
      var copy = last.cloneNode(true);
      copy.dataset.set = String(next);
      Array.prototype.forEach.call(copy.querySelectorAll('input[type=range]'), function (r, i) {
        r.name = 'w.' + next + '.' + r.dataset.weight;
        r.value = last.querySelectorAll('input[type=range]')[i].value;
      });
      sets.appendChild(copy);
      renumber();
      estimate();
    });
    sets.addEventListener('click', function (ev) {
      var rm = ev.target.closest('[data-remove-set]');
      if (!rm) return;
      if (sets.querySelectorAll('.wset').length > 1) rm.closest('.wset').remove();
      renumber();
      estimate();
    });
    estimate();
  }

  // ---------------------------------------------------------------- start
  document.addEventListener('DOMContentLoaded', function () {
    Array.prototype.forEach.call(document.querySelectorAll('[data-sync]'), setupSync);
    var sweep = document.getElementById('sweep');
    if (sweep) setupSweep(sweep);
    regions().forEach(function (el) { restoreSelections(el); startLogStreams(el); });
    connect();
    html.dataset.ready = '1';
  });
})();
