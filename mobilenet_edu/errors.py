"""The one exception type for errors a user causes (paths, files, shapes, arguments)."""


class MobileNetError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero."""
