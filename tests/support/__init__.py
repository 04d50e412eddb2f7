"""Test helpers shared by test modules: real servers on 127.0.0.1 (``servers``)."""
