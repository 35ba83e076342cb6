"""Forward hooks on the stock diffusers UNet's decoder blocks (``unet.up_blocks[i]``): no patched copy of
diffusers, so any recent diffusers version works.

``ActivationHooks(unet, layers)`` is a context manager. Inside it, every UNet forward stores the output of each
hooked block in ``hooks.outputs[layer]`` (the live tensor, so gradients flow through it). Options:
- ``batch_index``: keep only that sample of the batch (e.g. the conditional half of a CFG batch);
- ``stop_after``: a layer index; once that block has run, the forward is abandoned (``StopForward`` is caught by
  ``run_unet``), which saves the rest of the decoder when only the activations are needed;
- ``enabled``: switch recording off for forwards that should not record.
For SD2 at 512x512 the official layers' outputs are up_blocks[1]: 1280x32x32, [2]: 640x64x64, [3]: 320x64x64.
"""

from __future__ import annotations


class StopForward(Exception):
    """Raised by a hook to end a UNet forward early, once the activations needed are computed."""


class ActivationHooks:
    def __init__(self, unet, layers, batch_index: int | None = None):
        self.unet = unet
        self.layers = tuple(int(i) for i in layers)
        blocks = len(unet.up_blocks)
        for layer in self.layers:
            if not 0 <= layer < blocks:
                raise ValueError(f"The UNet has up_blocks[0..{blocks - 1}]; cannot hook up_blocks[{layer}].")
        self.batch_index = batch_index
        self.stop_after: int | None = None
        self.enabled = True
        self.outputs: dict[int, object] = {}
        self._handles = []

    def __enter__(self) -> ActivationHooks:
        for layer in self.layers:
            self._handles.append(self.unet.up_blocks[layer].register_forward_hook(self._hook(layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, layer: int):
        def hook(module, inputs, output):
            if not self.enabled:
                return None
            tensor = output[0] if isinstance(output, tuple) else output
            if self.batch_index is not None:
                tensor = tensor[self.batch_index:self.batch_index + 1]
            self.outputs[layer] = tensor
            if self.stop_after is not None and layer == self.stop_after:
                raise StopForward()
            return None

        return hook

    def take(self) -> dict:
        outputs, self.outputs = self.outputs, {}
        return outputs


def run_unet(unet, latents_in, t, embeddings, counter=None):
    """One UNet forward; returns the noise prediction, or None when a hook stopped it early (``StopForward``)."""
    if counter is not None:
        counter.forward(latents_in.shape[0])
    try:
        return unet(latents_in, t, encoder_hidden_states=embeddings, return_dict=False)[0]
    except StopForward:
        return None
