// The dashboard's script and style, compiled in: the utility needs no file of its own at run
// time besides Chart.js from libjs-chart.js.
//
// The script reads the page's JSON, draws a status line, the checks, tables (text only,
// never innerHTML) and one Chart.js line chart per series group. When everything is
// drawn it marks each chart with data-points (its point count) and <body> with
// data-rendered, which tests and headless browsers wait for.
#include <string>

#include "dashboard/render.hpp"

namespace warden::dashboard {

const std::string& dashboard_js()
{
    static const std::string js = R"JS((function () {
  'use strict';
  var data = JSON.parse(document.getElementById('warden-data').textContent);
  var main = document.getElementById('main');

  var CHARTS = [
    { id: 'connections', title: 'Connections by state', series: [
      ['connections_active', 'active'], ['connections_idle', 'idle'],
      ['connections_idle_in_transaction', 'idle in transaction'], ['connections_waiting', 'waiting for a lock']] },
    { id: 'transactions', title: 'Transactions per second', series: [
      ['commits_per_second', 'commits'], ['rollbacks_per_second', 'rollbacks']] },
    { id: 'cache', title: 'Cache hit ratio (%)', series: [['cache_hit_pct', 'cache hits']] },
    { id: 'dead_tuples', title: 'Dead tuples', series: [['dead_tuples', 'dead tuples']] },
    { id: 'wal', title: 'WAL written per minute', bytes: true, series: [['wal_bytes_per_minute', 'WAL']] },
    { id: 'lag', title: 'Replication and archive lag', bytes: true, series: [
      ['replication_lag_bytes', 'replication'], ['archive_lag_bytes', 'archive']] },
    { id: 'security', title: 'Failed logins and lockouts (last hour)', series: [
      ['failed_logins_last_hour', 'failed logins'], ['lockouts_last_hour', 'lockouts']] },
    { id: 'jobs', title: 'Job failures (last hour)', series: [['job_failures_last_hour', 'failed runs']] },
    { id: 'backup', title: 'Age of the last verified backup (hours)', series: [['backup_age_hours', 'hours']] }
  ];
  var COLOURS = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed'];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'className') node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function bytes(n) {
    var units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    var v = Math.abs(n), i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (n < 0 ? '-' : '') + (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
  }
  function number(n) {
    if (Math.abs(n) >= 1e6) return n.toExponential(2);
    return Number.isInteger(n) ? n.toLocaleString('en') : n.toLocaleString('en', { maximumFractionDigits: 2 });
  }
  function time(ms) {
    var d = new Date(ms);
    function two(x) { return (x < 10 ? '0' : '') + x; }
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate()) + ' ' +
      two(d.getHours()) + ':' + two(d.getMinutes());
  }
  var ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;
  function cell(key, v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number') return /bytes$|_size$/.test(key) ? bytes(v) : number(v);
    if (typeof v === 'object') return JSON.stringify(v);
    if (ISO.test(v)) { var t = Date.parse(v); if (!isNaN(t)) return time(t); }
    return String(v);
  }
  function withUnit(v, unit) {
    if (v === null || v === undefined) return '—';
    if (unit && unit.indexOf('bytes') === 0) return bytes(v) + unit.slice(5);
    return number(v) + (unit ? ' ' + unit : '');
  }

  function statusLine() {
    var s = data.status || 'unknown', sum = data.summary || {};
    var text = ['ok', 'warning', 'critical', 'unknown'].map(function (k) {
      return (sum[k] || 0) + ' ' + k; }).join(', ');
    return el('section', { className: 'statusline status-' + s, 'data-status': s }, [
      el('h1', { text: data.title }),
      el('p', { className: 'question', text: data.question }),
      el('p', { className: 'overall' }, [
        el('span', { className: 'badge badge-' + s, text: s.toUpperCase() }),
        el('span', { text: ' ' + (data.database || '?') + ' on PostgreSQL ' + (data.server_version || '?') +
          (data.in_recovery ? ' (standby)' : '') + ' · ' + text + ' · ' +
          (data.generated_at ? time(Date.parse(data.generated_at)) : '') })])
    ]);
  }

  function checks(section) {
    var rows = section.rows || [];
    var body = el('tbody', {}, rows.map(function (c) {
      var limits = (c.warning === null && c.critical === null) ? '—' :
        'warn ' + withUnit(c.warning, c.unit) + ' / crit ' + withUnit(c.critical, c.unit);
      return el('tr', { 'data-check': c.check, 'data-status': c.status,
                        className: c.applicable === false ? 'na' : '' }, [
        el('td', {}, [el('span', { className: 'badge badge-' + c.status, text: c.status })]),
        el('td', { className: 'name', text: c.check }),
        el('td', { text: c.category }),
        el('td', { className: 'num', text: withUnit(c.value, c.unit) }),
        el('td', { className: 'num', text: limits }),
        el('td', { className: 'detail', text: c.detail || '' })]);
    }));
    var head = el('thead', {}, [el('tr', {}, ['status', 'check', 'category', 'value', 'threshold', 'detail']
      .map(function (h) { return el('th', { text: h }); }))]);
    return el('section', { className: 'card', 'data-section': 'checks' }, [
      el('h2', { text: section.title + ' (' + rows.length + ')' }),
      rows.length ? el('table', { className: 'checks' }, [head, body]) : el('p', { className: 'empty', text: 'No checks here.' })]);
  }

  function table(section) {
    var card = el('section', { className: 'card', 'data-section': 'table', 'data-title': section.title },
                  [el('h2', { text: section.title })]);
    if (section.error) { card.appendChild(el('p', { className: 'error', text: section.error })); return card; }
    var rows = section.rows || [];
    card.setAttribute('data-rows', String(rows.length));
    if (!rows.length) { card.appendChild(el('p', { className: 'empty', text: 'None.' })); return card; }
    var cols = Object.keys(rows[0]);
    card.appendChild(el('div', { className: 'scroll' }, [el('table', {}, [
      el('thead', {}, [el('tr', {}, cols.map(function (c) { return el('th', { text: c.replace(/_/g, ' ') }); }))]),
      el('tbody', {}, rows.map(function (r) {
        return el('tr', {}, cols.map(function (c) {
          return el('td', { className: typeof r[c] === 'number' ? 'num' : '', text: cell(c, r[c]) }); }));
      }))])]));
    return card;
  }

  var pending = [];
  function charts(section) {
    var wrap = el('section', { className: 'card', 'data-section': 'series' }, [el('h2', { text: section.title })]);
    if (data.page === 'charts' && data.ranges) {
      wrap.appendChild(el('p', { className: 'ranges' }, data.ranges.map(function (r) {
        return el('a', { href: '?range=' + r, className: r === data.range ? 'current' : '', text: r });
      })));
    }
    if (section.error) { wrap.appendChild(el('p', { className: 'error', text: section.error })); return wrap; }
    var rows = section.rows || [];
    var grid = el('div', { className: 'grid' });
    wrap.appendChild(grid);
    CHARTS.forEach(function (def) {
      var canvas = el('canvas', {});
      var box = el('div', { className: 'chart', 'data-chart': def.id }, [
        el('h3', { text: def.title }), el('div', { className: 'canvas' }, [canvas])]);
      grid.appendChild(box);
      var datasets = def.series.map(function (s, i) {
        return { label: s[1], borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
          borderWidth: 2, pointRadius: 0, tension: 0.2,
          data: rows.filter(function (r) { return r[s[0]] !== null && r[s[0]] !== undefined; })
                    .map(function (r) { return { x: Date.parse(r.taken_at), y: Number(r[s[0]]) }; }) };
      });
      pending.push({ box: box, canvas: canvas, def: def, datasets: datasets });
    });
    return wrap;
  }

  function draw(p) {
    var points = p.datasets.reduce(function (n, d) { return n + d.data.length; }, 0);
    p.box.setAttribute('data-points', String(points));
    if (!points) { p.box.appendChild(el('p', { className: 'empty', text: 'No data in this range.' })); return; }
    new Chart(p.canvas, {
      type: 'line',
      data: { datasets: p.datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', ticks: { maxTicksLimit: 5, callback: function (v) { return time(v).slice(5); } } },
          y: { beginAtZero: true, ticks: { maxTicksLimit: 5, callback: function (v) { return p.def.bytes ? bytes(v) : number(v); } } }
        },
        plugins: {
          legend: { display: p.datasets.length > 1, labels: { boxWidth: 12 } },
          tooltip: { callbacks: { title: function (items) { return time(items[0].parsed.x); } } }
        }
      }
    });
  }

  main.appendChild(statusLine());
  (data.sections || []).forEach(function (s) {
    if (s.kind === 'checks') main.appendChild(checks(s));
    else if (s.kind === 'series') main.appendChild(charts(s));
    else main.appendChild(table(s));
  });
  pending.forEach(draw);
  requestAnimationFrame(function () { document.body.setAttribute('data-rendered', 'true'); });
})();
)JS";
    return js;
}

const std::string& dashboard_css()
{
    static const std::string css = R"CSS(
:root { --ok: #16a34a; --warning: #d97706; --critical: #dc2626; --unknown: #7c3aed; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111827; background: #f3f4f6; }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #111827; color: #f9fafb; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header nav a { color: #d1d5db; text-decoration: none; margin-right: 16px; }
header nav a.current, header nav a:hover { color: #fff; border-bottom: 2px solid #60a5fa; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 13px; margin: 0 0 6px; color: #374151; }
.question { margin: 0 0 8px; color: #6b7280; }
.statusline { background: #fff; border-left: 6px solid var(--unknown); padding: 14px 18px; margin-bottom: 16px; border-radius: 6px; }
.statusline.status-ok { border-color: var(--ok); } .statusline.status-warning { border-color: var(--warning); }
.statusline.status-critical { border-color: var(--critical); }
.overall { margin: 0; }
.card { background: #fff; border-radius: 6px; padding: 14px 18px; margin-bottom: 16px; box-shadow: 0 1px 2px rgba(0,0,0,.05); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: #6b7280; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.name { font-weight: 600; white-space: nowrap; }
td.detail { color: #4b5563; max-width: 520px; overflow-wrap: anywhere; }
tr.na td { color: #9ca3af; }
.badge { display: inline-block; min-width: 64px; text-align: center; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; background: var(--unknown); }
.badge-ok { background: var(--ok); } .badge-warning { background: var(--warning); } .badge-critical { background: var(--critical); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 16px; }
.chart .canvas { position: relative; height: 200px; }
.ranges a { margin-right: 10px; color: #2563eb; text-decoration: none; padding: 2px 8px; border-radius: 4px; }
.ranges a.current { background: #2563eb; color: #fff; }
.empty { color: #6b7280; font-style: italic; margin: 4px 0; }
.error { color: var(--critical); margin: 4px 0; }
)CSS";
    return css;
}

}  // namespace warden::dashboard
