"""The errors of the geometry engine: ``GeometryError`` and, for an edit with nothing left in view,
``OutOfViewError``.

ValueError subclasses, so callers that already treat bad input as ValueError keep working; the message always says
what to do about it. ``code`` is the engine error code a job reports for each (``engine/errors.py``), so callers
catch by type and never read the words of a message.
"""


class GeometryError(ValueError):
    """Bad geometric input (empty mask, bad depth, singular transform...)."""

    code = "bad_geometry"


class OutOfViewError(GeometryError):
    """The edit moves the object (all of it) out of the picture."""

    code = "object_out_of_view"
