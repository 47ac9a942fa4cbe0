"""Tests of examples/: the converted shop delivers whole, and the wheel runs it."""
