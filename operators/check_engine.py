# SPDX-License-Identifier: GPL-3.0-or-later
"""``dhandles.check_engine``: say what is wrong with the engine, if anything (``engine_link/check_engine.py``)."""

import bpy

from ..engine_link import check_engine


class DHANDLES_OT_check_engine(bpy.types.Operator):
    """Check that the engine's Python runs and has the packages the engine needs"""

    bl_idname = "dhandles.check_engine"
    bl_label = "Check Engine"
    bl_options = {"REGISTER"}

    def execute(self, context):
        result = check_engine.check_and_show(context)
        self.report({"INFO"} if result.ok else {"ERROR"}, result.message)
        return {"FINISHED"} if result.ok else {"CANCELLED"}


CLASSES = (DHANDLES_OT_check_engine,)
