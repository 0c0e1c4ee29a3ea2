"""Factories for the --module tests: a good one lives in actexport.examples; these are the bad ones."""

from __future__ import annotations


def not_a_module():
    return 3


def raises():
    raise RuntimeError("boom")


NOT_CALLABLE = 42
