"""Use cases, one module or package per API resource: ``(session, *, ports..., args...)``, never committing."""
