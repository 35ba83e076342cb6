"""Perspective constraints from vanishing points (Upadhyay et al., SIGGRAPH Asia 2023, arXiv 2312.00944).

- ``vanishing``: exact vanishing points from a camera and 3D directions (numpy only).
- ``sweep``: the lines swept through each vanishing point, as sample positions (torch).
- ``image_gradients``: grayscale and Sobel gradients shared by the losses (torch).
- ``loss``: the paper's reference loss (line profiles of the perpendicular gradient, L2 between images).
- ``no_reference``: a loss for when no pixel-aligned reference exists (edges pointing at some VP).
- ``metric``: line-segment (LSD) inlier shares and median angular error, for reports (numpy + OpenCV).
- ``guidance``: the loss as an extra term of the guided sampler; ``edit_job``: what an edit job does with its
  ``perspective`` parameter (the term, and the figures of its report).
- ``dataset``, ``finetune``: reading a folder of (image, depth, caption, VPs) samples; LoRA fine-tuning of the
  depth UNet with noise MSE + lambda x the loss, and loading the adapters; ``edit_lora``: the adapters on the
  engine's warm model for edits that ask for them (the jobs' ``lora`` parameter).

Conventions (everywhere in this package, as in ``engine.geometry.camera``): vanishing points are in pixels of the
image they belong to, u right, v down, integer coordinates at pixel centres, so the image covers
[-0.5, W - 0.5] x [-0.5, H - 0.5] and a centred lens has its principal point at ((W - 1) / 2, (H - 1) / 2). A vanishing
point is homogeneous (x, y, w): w = 1 for a finite point, w = 0 for a point at infinity, whose (x, y) is then the
image direction of the parallel lines. Importing this package imports nothing heavy.
"""
