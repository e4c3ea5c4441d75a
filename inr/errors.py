"""Errors raised by the inr package.

Every error derives from :class:`InrError`; errors about a bad argument also
derive from :class:`ValueError` so callers can catch either.
"""
from __future__ import annotations


class InrError(Exception):
    """Base class of every error raised by ``inr``."""


class InrValueError(InrError, ValueError):
    """A bad argument: the message names the parameter and the valid choices."""


class ModelFormatError(InrError, ValueError):
    """Model bytes that are truncated, corrupt or of an unknown format version."""


class BackendUnavailableError(InrError, RuntimeError):
    """A backend was asked for explicitly but cannot run here (the message says why)."""
