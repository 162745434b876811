"""``cxpar serve``: a CX program as an HTTP service with a live web page.

Routes over the public Python API only (:func:`cxpar.load`, :meth:`cxpar.Program.run`,
:class:`cxpar.Runtime`): :mod:`.app` (Starlette routes, token, body limits),
:mod:`.runs` (runs in flight and their live events), :mod:`.metrics` (Prometheus),
:mod:`.server` (uvicorn, graceful shutdown); the page's static files are in ``static/``.
Needs the ``serve`` extra (``pip install 'cxpar[serve]'``).
"""
