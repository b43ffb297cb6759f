"""Errors that the CLI turns into one-line messages and a non-zero exit."""


class DeliftError(Exception):
    """A user-facing error: its message is one line naming the file, line or key at fault."""


class InputError(DeliftError):
    """Bad input data or parameters (file, line or key named in the message)."""


class StoreLockedError(DeliftError):
    """Another process holds the store's write lock."""


class ModelUnavailableError(DeliftError):
    """The requested model cannot be loaded offline (missing package or path)."""
