"""The price model: a monotone GAM and monotone boosted trees on log price, blended."""


class NotFittedError(RuntimeError):
    """A model step was called out of order (predict before fit, quote before calibrate)."""
