"""Use cases, one module or package per API resource: functions ``(session, *, ports..., args...)`` that never commit."""
