"""The one error every model loader raises when weights are not available: it names the model and says how to
get it, because the user, not the code, has to act (download once, or point the add-on at a local copy)."""

from __future__ import annotations

from ..errors import MissingWeights

# where Blender's UI takes each kind of model (preferences.py's labels; the Render panel's Settings > Model
# overrides the diffusion model per scene); kinds missing here have no field in the UI
BLENDER_FIELDS = {
    "depth-conditioned diffusion model": "Preferences > Add-ons > Diffusion Handles > Diffusion Model, or the "
                                         "Render panel's Settings > Model",
    "depth estimator": "Preferences > Add-ons > Diffusion Handles > Depth Model",
    "segmentation model": "Preferences > Add-ons > Diffusion Handles > Segmentation Model",
}


def how_to_get(model: str, what: str, hub_id: str | None = None) -> str:
    """The sentence that says how to make ``model`` available: download it once, or give a local copy."""
    field = BLENDER_FIELDS.get(what)
    places = ([f"in Blender: {field}"] if field else []) + [
        "on the command line: `--model /path/to/folder`",
        f"or DHANDLES_MODELS_DIR=/parent/folder holding '{model}'"]
    return ("Download it once (in Blender: Preferences > Add-ons > Diffusion Handles > Models > Download, with "
            f"Preferences > System > Network > Allow Online Access on; or `hf download {hub_id or model}` in a "
            "terminal), or "
            f"copy it into a folder and give that folder as the model ({'; '.join(places)}).")


class ModelMissingError(MissingWeights):
    """Weights for ``model`` could not be loaded (offline and not cached, no safetensors, broken folder...): the
    engine's ``missing_weights`` error. ``tried``: the sources looked in, in order (``engine.models.sources``)."""

    def __init__(self, model: str, what: str, reason: str, detail: str | None = None, hint: str | None = None,
                 tried: list[str] | None = None):
        self.model = model
        self.what = what
        self.reason = reason
        self.tried = list(tried or [])
        super().__init__(f"The {what} '{model}' is not available: {reason}. " + (hint or how_to_get(model, what)),
                         detail)
