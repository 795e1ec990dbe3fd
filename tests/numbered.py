"""Old import name of tests/helpers/numbered.py; import from there."""

from tests.helpers.numbered import NumberedSender

__all__ = ["NumberedSender"]
