"""The venue's web console (``techne console``): French first, English available.

What a venue's team sees and controls, page by page (routes under ``/lieux/<venue>/``):
``partage`` (what is shared, with whom, why, over a period; agreements in plain language;
withdrawals and erasures against the promise; a printable DPO version), ``sources`` (each source's
last delivery, accepted and refused events, the latest refusals with what to do), ``import``
(upload a CSV or XLSX export, preview, row errors in French before anything is sent, send with
progress), ``consentements`` (counts per purpose and state, expiries coming, the preference-centre
link) and ``analyses`` (the shared insights report, small cells suppressed).

Modules: :mod:`~techne.console.app` (sign-in, route table), :mod:`~techne.console.web` (shared state, access checks),
:mod:`~techne.console.pages` and :mod:`~techne.console.imports` (the pages), :mod:`~techne.console.security`
(signed expiring sessions, CSRF, login rate limit, console settings), :mod:`~techne.console.users`
(argon2 password hashes, one-time links), :mod:`~techne.console.data` (every read, through the one
read path :mod:`sinks.reader`), :mod:`~techne.console.uploads` (the import page's files and sends),
:mod:`~techne.console.i18n` (French and English texts), ``templates/`` (Jinja2, server-side).
"""
