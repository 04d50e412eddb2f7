"""Use cases: functions ``(session, *, ports..., args...)`` that never commit."""
