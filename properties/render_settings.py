# SPDX-License-Identifier: GPL-3.0-or-later
"""The settings of a render (``scene.dhandles_render``): prompt, seed, steps, guidance weights, model, perspective
adapters (LoRA) and where the result is shown. Each render copies them, with the transform, into the result image
and its JSON sidecar, so any result can be reproduced."""

from __future__ import annotations

import bpy

# Newer Blenders warn about a path property holding a .blend-relative "//" path unless it says it may; older ones
# have no such option (and accept any path).
BLEND_RELATIVE = ({"PATH_SUPPORTS_BLEND_RELATIVE"}
                  if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())


class DHANDLES_PG_render_settings(bpy.types.PropertyGroup):
    prompt: bpy.props.StringProperty(
        name="Prompt", description="Caption of the whole photo. Empty: the prompt saved with the imported photo",
        default="")
    seed: bpy.props.IntProperty(name="Seed", default=2773, min=0, description="Noise seed (the paper's: 2773)")
    steps: bpy.props.IntProperty(name="Steps", default=50, min=1, max=1000, description="DDIM steps")
    guidance_scale: bpy.props.FloatProperty(name="Prompt Guidance", default=7.5, min=0.0, max=50.0,
                                            description="Classifier-free guidance scale")
    identity_weight: bpy.props.FloatProperty(name="Identity Weight", default=1.5, min=0.0, max=100.0,
                                             description="How strongly the moved object keeps its look")
    background_weight: bpy.props.FloatProperty(name="Background Weight", default=1.25, min=0.0, max=100.0,
                                               description="How strongly the rest of the photo stays as it was")
    resolution: bpy.props.IntProperty(name="Working Size", default=512, min=64, max=2048, step=64,
                                      description="Longer side, in pixels, the diffusion works at (a multiple of "
                                      "64; the model was trained at 512). The result keeps the photo's size")
    inversion: bpy.props.EnumProperty(
        name="Inversion", default="null-text",
        items=[("null-text", "Null-text (paper)", "Null-text inversion: most faithful, slower"),
               ("ddim", "DDIM (fast)", "DDIM inversion: no optimisation, faster, a little less faithful")])
    model: bpy.props.StringProperty(
        name="Model", default="",
        description="Diffusion model preset, hub id or folder. Empty: the add-on preferences' Diffusion Model")
    perspective_adapters: bpy.props.StringProperty(
        name="Perspective Adapters", default="", subtype="DIR_PATH", options=BLEND_RELATIVE,
        description="Folder of LoRA perspective adapters made by 'python -m engine finetune-perspective' (its "
        "--out folder), applied to the model for each edit. Empty: none")
    perspective_adapter_scale: bpy.props.FloatProperty(
        name="Adapter Scale", default=1.0, min=0.0, soft_max=2.0,
        description="How strongly the perspective adapters act (1: as trained, 0: not at all)")
    show_in_image_editor: bpy.props.BoolProperty(name="Image Editor", default=True,
                                                 description="Show the result in an open Image Editor")
    show_on_plane: bpy.props.BoolProperty(name="Plane", default=False,
                                          description="Show the result on a plane filling the camera's view")
    render_plane: bpy.props.BoolProperty(
        name="Render Plane", default=False,
        description="Let the result plane appear in the scene's own renders (F12). Off: it shows in the viewport "
        "only, so later renders see the 3D scene, not the last result")
    show_as_camera_background: bpy.props.BoolProperty(name="Camera Background", default=False,
                                                      description="Show the result as the camera's background")


CLASSES = (DHANDLES_PG_render_settings,)


def register_extra():
    bpy.types.Scene.dhandles_render = bpy.props.PointerProperty(type=DHANDLES_PG_render_settings)


def unregister_extra():
    del bpy.types.Scene.dhandles_render
