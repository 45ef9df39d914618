"""Exceptions that the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class RecbenchError(Exception):
    """A user mistake (bad suite, missing data, wrong option): shown as one line, exit 2."""

    exit_code = 2


class ConfigError(RecbenchError):
    """A suite or parameter error, located by file, key path and line when known."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None):
        self.file, self.key, self.line, self.message = file, key, line, message
        where = ""
        if file:
            where = str(file) + (f":{line}" if line else "")
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class DataError(RecbenchError):
    """Unreadable, malformed or empty input data."""


class DataUnavailable(DataError):
    """The data is not configured at all (e.g. no data root set): a suite's
    ``[dataset.fallback]`` may replace it. A root that is set but wrong is a DataError."""


class PluginError(RecbenchError):
    """A plugin could not be registered (duplicate name, wrong base class)."""
