# SPDX-License-Identifier: GPL-3.0-or-later
"""The scene's Perspective settings (``Scene.dhandles_perspective``: which vanishing points each edit sends and the
perspective guidance it asks for) and the viewport's *Draw Vanishing Points* switch (``Scene.dhandles_draw_vps``)."""

import bpy

from ..perspective.vanishing_draw import draw_toggled, set_drawn
from ..perspective.vanishing_points import GUIDANCE_MODES, SOURCES


class DHANDLES_PG_perspective(bpy.types.PropertyGroup):
    """Which vanishing points each edit sends to the engine, and the perspective guidance it asks for."""

    enabled: bpy.props.BoolProperty(
        name="Perspective", default=True,
        description="Send the vanishing points with each edit: the report scores the result against them")
    source: bpy.props.EnumProperty(name="Directions", items=SOURCES, default="WORLD",
                                   description="The 3D directions whose vanishing points the photo should respect")
    reference_object: bpy.props.PointerProperty(
        name="Axes Object", type=bpy.types.Object,
        description="The object whose axes (or, as a plane, whose in-plane axes) give the directions")
    guidance_weight: bpy.props.FloatProperty(
        name="Guidance Weight", default=0.0, min=0.0, soft_max=1000.0,
        description="Weight of the perspective loss in guided sampling; 0 only scores the result")
    guidance_mode: bpy.props.EnumProperty(name="Guidance", items=GUIDANCE_MODES, default="no_reference")
    guidance_every: bpy.props.IntProperty(name="Every", default=1, min=1, max=50,
                                          description="Apply the guidance every N-th sampling step")
    guidance_t_min: bpy.props.IntProperty(name="From Timestep", default=0, min=0, max=1000)
    guidance_t_max: bpy.props.IntProperty(name="To Timestep", default=1000, min=0, max=1000)


CLASSES = (DHANDLES_PG_perspective,)


def register_extra():
    bpy.types.Scene.dhandles_perspective = bpy.props.PointerProperty(type=DHANDLES_PG_perspective)
    bpy.types.Scene.dhandles_draw_vps = bpy.props.BoolProperty(
        name="Draw Vanishing Points", default=False, update=draw_toggled,
        description="Draw lines towards the vanishing points of the Perspective directions in the 3D viewport, "
        "from the imported photo's camera (look through the camera to see them converge)")


def unregister_extra():
    set_drawn(False)
    del bpy.types.Scene.dhandles_draw_vps
    del bpy.types.Scene.dhandles_perspective
