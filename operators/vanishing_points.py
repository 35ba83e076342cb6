# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.show_vanishing_points``: report the scene camera's vanishing points (``perspective/vanishing_points.py``
computes them)."""

import bpy

from ..perspective.vanishing_points import (
    SOURCES,
    VanishingPointError,
    camera_vanishing_points,
    describe_vanishing_points,
)


class DHANDLES_OT_show_vanishing_points(bpy.types.Operator):
    """Report the vanishing points of the scene camera for the world axes, the active object's axes, or the ground
    plane (the active object if it is a plane, else the world floor)"""

    bl_idname = "dhandles.show_vanishing_points"
    bl_label = "Show Vanishing Points"
    bl_options = {"REGISTER"}

    source: bpy.props.EnumProperty(name="Directions", items=SOURCES, default="WORLD")

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.scene.camera is not None

    def execute(self, context):
        obj = context.active_object if self.source != "WORLD" else None
        if self.source == "GROUND" and obj is not None and obj.type != "MESH":
            obj = None
        try:
            payload = camera_vanishing_points(context.scene, context.scene.camera, self.source, obj)
        except VanishingPointError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, describe_vanishing_points(payload))
        return {"FINISHED"}


CLASSES = (DHANDLES_OT_show_vanishing_points,)
