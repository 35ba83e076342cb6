"""Diffusion Handles on depth-conditioned Stable Diffusion 2 (Pandey et al., CVPR 2024).

One idea per module:
- ``settings``: every number of the method, official defaults first (``EditSettings``);
- ``encoding``: photo <-> latents, prompt -> embeddings, depth -> the UNet's 5th input channel;
- ``activations``: forward hooks on the stock diffusers UNet's ``up_blocks`` that record or capture activations;
- ``inversion``: null-text inversion (the paper) and DDIM inversion (cheaper), each also recording activations;
- ``guidance``: identity and background losses on activations, correspondences resampled to each grid;
- ``sampler``: the guided sampling loop, with an extension point for extra guidance terms;
- ``cache``: inversions and activations on disk (safetensors) keyed by content hashes;
- ``composite``: the edited region pasted into the full-resolution photo;
- ``report``: stage timings, UNet evaluations, memory, losses;
- ``inputs``: photos, masks, depth (.exr/.npy) and transforms from files and photogen-style sample folders;
- ``pipeline``: the end-to-end edit, returning the image and its report.
Importing this package imports nothing heavy.
"""
