"""The one error every model loader raises when weights are not available: it names the model and says how to
get it, because the user, not the code, has to act (download once, or point the add-on at a local copy)."""

from __future__ import annotations


class ModelMissingError(RuntimeError):
    """Weights for ``model`` could not be loaded (offline and not cached, no safetensors, broken folder...)."""

    def __init__(self, model: str, what: str, reason: str, detail: str | None = None, hint: str | None = None):
        self.model = model
        self.what = what
        self.reason = reason
        self.detail = detail
        super().__init__(f"The {what} '{model}' is not available: {reason}. " + (hint or (
            f"Download it once with "
            f"`huggingface-cli download {model}` (or `hf download {model}`) while online, or copy it into a folder "
            f"and give that folder as the model (the add-on's 'Local model folder' preference, "
            f"`--model /path/to/folder`, or DHANDLES_MODELS_DIR=/parent/folder holding '{model}')."
        )))
