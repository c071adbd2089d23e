"""User-facing errors: the message names the file, key or value at fault and what was expected."""


class UserError(Exception):
    """Bad input from the user (a file, a parameter, a command-line value).

    Stage commands print ``error: <message>`` and exit with status 2 instead of a traceback.
    """


class DataError(UserError):
    """A dataset, annotation, detection or image file is missing, corrupt or malformed."""


class ConfigError(UserError):
    """A configuration key is unknown, has the wrong type or an impossible value."""


class CheckpointError(UserError):
    """A checkpoint file does not match the model it is loaded into."""


class OutputError(UserError):
    """An output file cannot be written (no space left, permission denied, read-only file system)."""
