"""The one error type of the geometry engine.

A ValueError subclass, so callers that already treat bad input as ValueError keep working; the message always says
what to do about it.
"""


class GeometryError(ValueError):
    """Bad geometric input or an edit with no visible result (empty mask, bad depth, object moved out of view)."""
