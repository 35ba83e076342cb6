"""The Diffusion Handles engine: geometry, diffusion and the process Blender talks to.

This package never imports bpy, and importing it stays cheap (no torch, diffusers or scipy at import time)
because Blender's own Python imports the standard-library client from it. Heavy modules are imported by the
submodules that need them.

It is importable both as the top-level package ``engine`` (``python -m engine`` in the engine's virtual
environment) and as a subpackage of the installed Blender extension, so modules inside use relative imports.
"""

__version__ = "0.2.0"
