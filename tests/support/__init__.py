"""Test helpers shared by test modules: real servers on 127.0.0.1 (``servers``), the bearer
header of an API token (``auth``), running queued job requests (``job_requests``)."""
