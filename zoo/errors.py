"""The error type for bad input from a user (TensorFlow-free)."""


class UserError(ValueError):
    """Bad input from a user: the message says what was expected.

    The CLI prints the message and exits with code 2, with no traceback.
    """
