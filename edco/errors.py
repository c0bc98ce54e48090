"""Errors whose message says what to change; the CLI prints them without a traceback."""


class UserFacingError(Exception):
    """Base class: bad config, bad data, missing GPU or optional extra."""
