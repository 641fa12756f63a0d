// Coordinator page: progress per reader (refreshed every 5 s), close the study, download the trials.
'use strict';
(function () {
  const token = location.pathname.split('/').filter(Boolean).pop();
  const api = '/api/c/' + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  $('download').href = api + '/results.csv';

  async function refresh() {
    try {
      const response = await fetch(api + '/progress', { cache: 'no-store' });
      const body = await response.json();
      const rows = $('rows');
      rows.textContent = '';
      for (const [name, p] of Object.entries(body.readers)) {
        const tr = document.createElement('tr');
        const bar = document.createElement('progress');
        bar.max = p.total || 1; bar.value = p.answered;
        for (const value of [name, p.answered, p.total]) {
          const td = document.createElement('td'); td.textContent = value; tr.appendChild(td);
        }
        const td = document.createElement('td'); td.appendChild(bar); tr.appendChild(td);
        rows.appendChild(tr);
      }
      $('state').textContent = body.closed ? 'The study is closed.' : 'The study is open.';
      $('close').disabled = body.closed;
    } catch (e) { $('state').textContent = 'The server cannot be reached.'; }
  }

  $('close').addEventListener('click', async () => {
    if (!confirm('Close the study? No more answers will be accepted.')) return;
    await fetch(api + '/close', { method: 'POST' });
    refresh();
  });
  refresh();
  setInterval(refresh, 5000);
})();
