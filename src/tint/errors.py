"""The one exception type that reaches the user as a single line."""


class TintError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line and exits 1."""
