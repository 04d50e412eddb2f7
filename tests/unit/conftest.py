"""Unit tests: the property-based tests' profile (see ``tests/support/examples.py``)."""

from tests.support import examples

examples.load()
