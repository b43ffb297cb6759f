"""Errors that the CLI turns into one-line messages and a non-zero exit."""


class DeliftError(Exception):
    """A user-facing error: its message is one line naming the file, line or key at fault."""


class InputError(DeliftError):
    """Bad input data or parameters (file, line or key named in the message)."""


class ArgumentError(InputError, ValueError):
    """A bad argument of a library function, named by the function's own parameter name;
    the stage layer renames it to the params.yaml key or the CLI option it came from."""

    def __init__(self, argument: str, detail: str, sep: str = " ") -> None:
        super().__init__(f"{argument}{sep}{detail}")
        self.argument, self.detail, self.sep = argument, detail, sep

    def renamed(self, name: str) -> InputError:
        """The same error naming `name` (a params.yaml key or a CLI option) instead."""
        return InputError(f"{name}{self.sep}{self.detail}")


class StoreLockedError(DeliftError):
    """Another process holds the store's write lock."""


class ModelUnavailableError(DeliftError):
    """The requested model cannot be loaded offline (missing package or path)."""


class DeviceMemoryError(DeliftError):
    """Scoring ran out of accelerator memory even on a single sequence."""
