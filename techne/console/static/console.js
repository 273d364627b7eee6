// The console's only script: a print button, and the progress of a file being sent.
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('[data-print]').forEach(function (b) {
    b.addEventListener('click', function () { window.print(); });
  });
  var box = document.getElementById('progress');
  if (!box) return;
  var bar = box.querySelector('progress');
  function poll() {
    fetch(box.dataset.stateUrl, {credentials: 'same-origin'}).then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.total) { bar.max = s.total; }
        if (s.done !== undefined) { bar.value = s.done; }
        if (s.state === 'running') { setTimeout(poll, 400); } else { window.location.reload(); }
      }).catch(function () { setTimeout(poll, 1000); });
  }
  poll();
});
