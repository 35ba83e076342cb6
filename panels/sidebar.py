# SPDX-License-Identifier: GPL-3.0-or-later
"""Where every panel of the extension sits: the 3D viewport's sidebar, tab "Diffusion Handles"."""

CATEGORY = "Diffusion Handles"


class SidebarPanel:
    """Mixin for the extension's ``bpy.types.Panel`` classes."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
