"""The error type for bad input from a user (TensorFlow-free)."""


class UserError(ValueError):
    """Bad input from a user: the message says what was expected.

    The CLI prints the message and exits with code 2, with no traceback.
    """


class NotFittedError(UserError, AttributeError):
    """A detector or score used before ``fit``/``calibrate``: one error for every detector of the project.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``NotFittedError`` is (code that catches
    either for a scikit-learn or PyOD detector catches it too); a :class:`UserError`, so the CLI reports it in
    one line.
    """
