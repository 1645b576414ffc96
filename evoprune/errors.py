"""The one exception type users see for bad input."""


class EvopruneError(ValueError):
    """Bad input, named in one sentence: the CLI prints it and exits 2."""
