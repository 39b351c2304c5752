"""The engine's exceptions: one base class, so callers (CLI, worker, bot) catch one thing."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose; its message is meant for the user."""


class UnknownModelError(EngineError):
    """A model name that is neither built in, registered, a local folder nor a reachable hub id."""


class ModelLoadError(EngineError):
    """A model that exists but could not be loaded."""


class DataError(EngineError):
    """A data file or text that can't be used; the message names the rows and the reason."""


class LabelMismatchError(DataError):
    """Labels in the data that the model does not know."""


class NoClassifierError(EngineError):
    """Classification was asked for without a model or labels, and the workspace has none."""


class CancelledError(EngineError):
    """A job was cancelled between two steps."""
