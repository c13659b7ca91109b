"""Switchboard: an open-source AI call-center engine."""

__version__ = "0.1.0"
