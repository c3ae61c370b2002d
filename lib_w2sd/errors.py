"""Typed errors of the engine, so that callers (the WebUI glue above all) can tell a
W2SD problem from any other failure and turn it into a warning or a clean error."""


class W2SDError(Exception):
    """Base class of every error W2SD raises on purpose."""


class UnsupportedSampler(W2SDError, ValueError):
    """The sampler cannot be reflected (no fixed schedule, or not k-diffusion's convention)."""


class InvalidOption(W2SDError, ValueError):
    """An engine option is out of range; the message names the option and the allowed values."""
