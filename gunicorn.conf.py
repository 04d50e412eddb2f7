"""gunicorn settings for the web API: ``gunicorn -c gunicorn.conf.py wsgi:app``.

gunicorn reads ``./gunicorn.conf.py`` by itself when started from the project folder; ``-c``
names it from elsewhere. Command-line options (``-w``, ``-b``) override what is set here.

Garbage collection: a worker holds a few hundred thousand long-lived objects once the app is
loaded (Flask, SQLAlchemy, marshmallow, numpy, the OpenAPI spec), and a request allocates
thousands of short-lived ones (a watchlist page: ~50 row dicts and their nested values). With
CPython's default thresholds every 700 net allocations run a young collection, and every so
often a full one walks all those long-lived objects: a pause of several milliseconds landing on
one request, which is what a p99 sees. So once the worker has loaded the app, ``gc.freeze()``
moves everything alive then into a permanent generation the collector never walks, and a
higher young-generation threshold runs young collections ten times less often (a request's
garbage is mostly freed by reference counting anyway; the collector only finds cycles).
"""

from __future__ import annotations

import gc
import os
from typing import Any

#: gen-0 threshold (CPython's default: 700); gens 1 and 2 keep their defaults.
GC_GEN0_THRESHOLD = int(os.environ.get("HS_GC_GEN0_THRESHOLD", "7000"))

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"


def post_worker_init(worker: Any) -> None:
    """In each worker, after it loaded ``wsgi:app``: collect once, freeze what is left, raise gen 0."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
