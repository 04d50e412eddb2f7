"""In-memory channel: the fake for tests and the e2e suite, scriptable to fail."""

from __future__ import annotations

import threading
from collections import deque

from alerts.base import AlertDeliveryFailed, ChannelType, Message


class MemoryChannel:
    """Records every delivered ``(message, key, to)`` in ``sent``; ``fail_next`` makes the next
    sends raise ``AlertDeliveryFailed`` instead (they are counted in ``attempts`` but not
    recorded in ``sent``). Thread-safe, so several dispatcher threads may share one."""

    def __init__(self, type: ChannelType = ChannelType.SLACK) -> None:
        self.type = type
        self.sent: list[tuple[Message, str, str | None]] = []
        self.attempts = 0
        self.closed = False
        self._failures: deque[AlertDeliveryFailed] = deque()
        self._lock = threading.Lock()

    def fail_next(self, n: int = 1, *, retryable: bool = True, retry_after: float | None = None) -> None:
        """The next ``n`` sends fail with ``AlertDeliveryFailed(retryable=, retry_after=)``."""
        with self._lock:
            for _ in range(n):
                self._failures.append(
                    AlertDeliveryFailed("scripted failure", retryable=retryable, retry_after=retry_after)
                )

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        with self._lock:
            self.attempts += 1
            if self._failures:
                raise self._failures.popleft()
            self.sent.append((message, key, to))

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return [message for message, _, _ in self.sent]

    @property
    def keys(self) -> list[str]:
        with self._lock:
            return [key for _, key, _ in self.sent]

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self._failures.clear()
            self.attempts = 0

    def close(self) -> None:
        self.closed = True
