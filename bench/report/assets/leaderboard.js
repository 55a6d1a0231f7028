(function () {
  var table = document.getElementById('board');
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filters = Array.prototype.slice.call(document.querySelectorAll('select[data-col]'));
  var search = document.getElementById('search');
  var count = document.getElementById('count');
  function apply() {
    var q = search.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (tr) {
      var ok = filters.every(function (f) {
        return !f.value || (tr.cells[+f.dataset.col].dataset.v || '__none__') === f.value;
      });
      if (ok && q) { ok = tr.textContent.toLowerCase().indexOf(q) !== -1; }
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + rows.length + ' rows';
  }
  function key(td, numeric) {
    var v = td.dataset.v;
    if (v === undefined || v === '') { return null; }
    return numeric ? parseFloat(v) : v.toLowerCase();
  }
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, i) {
    th.querySelector('button').addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var numeric = th.dataset.type === 'num';
      rows.sort(function (a, b) {
        var x = key(a.cells[i], numeric), y = key(b.cells[i], numeric);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (tr) { tbody.appendChild(tr); });
    });
  });
  filters.forEach(function (f) { f.addEventListener('change', apply); });
  search.addEventListener('input', apply);
  apply();
}());
