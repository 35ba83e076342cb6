"""The end-to-end Diffusion Handles edit: photo + mask + depth + 3D transform -> edited photo + report.

``Editor(models, settings, cache)`` keeps the models and the last inversion in memory; ``editor.edit(request)``
runs, timing each stage:
1. ``prepare``: the photo, mask and depth at the working resolution (longer side ``settings.resolution``, the
   aspect kept, padded to multiples of 64: ``composite.working_layout``; everything is cropped back before
   compositing);
2. ``geometry``: the engine.geometry reprojection: edited depth, where the object lands, correspondences;
3. ``encode``: prompt embeddings and depth conditioning (original and edited);
4. ``inversion`` (or ``cache_load``): inversion + recorded activations, from the cache when this photo, depth,
   prompt, model and settings were inverted before; ``cache_store`` writes a new one;
5. ``guided_sampling``: per timestep a guidance step (identity/background gradient steps on the latents) and a
   denoising step on the edited depth (``sampler.GuidedSampler``), with the run's own ``torch.Generator`` seeded
   from ``settings.seed`` (the process-wide RNG is left alone);
6. ``decode`` and ``composite``: the VAE decodes, and only the changed region is pasted into the full-size photo.
The report's ``losses`` are ``{"measured": false}`` unless ``settings.measure_losses`` spends two more UNet
forwards to measure them (which layers and which step it names).
On out-of-memory the edit is retried with the next low-memory fallback (attention slicing, VAE tiling, CPU
offload), and a clear error is raised when all are spent; the report's ``memory_fallbacks`` (and
``memory_note``) say which fallbacks the run needed. ``edit_frames`` edits several transforms of one photo
(animation frames) on one inversion.

Progress: ``progress(stage, step, total, preview=None)``. During the reconstruction and the guided edit
``preview`` is a zero-argument callable returning the step's clean-latent estimate as an HxWx3 uint8 image of
the photo's part of the working frame; it costs one VAE decode, so callers call it only for the steps they show
(the jobs every ``thumbnail_every`` steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cache import InversionCache, inversion_key
from .composite import changed_region, composite, resize, working_layout
from .encoding import (
    decode_latents,
    depth_condition,
    encode_image,
    encode_prompt,
    tensor_to_image,
)
from .guidance import GuidanceTargets
from .inversion import invert
from .report import Report
from .sampler import guided_sample
from .settings import EditSettings


@dataclass
class EditResult:
    image: np.ndarray  # HxWx3 uint8 at the photo's resolution
    working_image: np.ndarray  # the decoded edit at the working resolution (the photo's part, padding cropped)
    edited_depth: np.ndarray  # working-resolution edited depth (cropped likewise)
    alpha: np.ndarray  # working-resolution blend weight of the edit (cropped likewise)
    report: dict


@dataclass
class _Prepared:  # everything in the padded working frame
    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    bg_depth: np.ndarray | None
    camera: object
    size: tuple  # (w, h) of the padded frame
    layout: object  # composite.WorkingLayout
    masks: list | None = None  # with several objects: each one's mask (``mask`` is their union)


@dataclass
class _Geometry:  # the 3D edit in the working frame
    edited_depth: np.ndarray
    target_mask: np.ndarray  # where the object lands
    targets: GuidanceTargets  # correspondences and masks on the activation grids
    visible_fraction: list


class Editor:
    def __init__(self, models, settings: EditSettings | None = None, cache: InversionCache | None = None):
        self.models = models
        self.settings = settings or EditSettings()
        self.cache = cache if cache is not None else InversionCache()
        self._last = None  # (key, Inversion): animation frames and repeated edits skip even the disk read

    def edit(self, request, progress=None, extra_terms=()) -> EditResult:
        return self._retrying(lambda: self._edit(request, progress, extra_terms))

    def invert_only(self, request, progress=None) -> dict:
        """Invert the photo (or find its inversion in the cache) without editing: warms the cache while the user
        is still placing the object. Returns the report."""
        return self._retrying(lambda: self._invert_only(request, progress))

    def _retrying(self, work):
        from ..device import free_memory, is_out_of_memory, out_of_memory_message

        while True:
            try:
                return work()
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried, everything else re-raised
                if not is_out_of_memory(exc):
                    raise
                if not self.models.can_lower_memory():
                    from ..errors import OutOfMemory

                    raise OutOfMemory(out_of_memory_message(self.models.device, self.models.low_memory)) from exc
            # out of the handler: the exception and its traceback, whose frames hold the failed attempt's
            # tensors, are gone, so the memory can really be freed
            self._last = None
            free_memory()
            self.models.enable_low_memory()

    def edit_frames(self, request, transforms, progress=None, extra_terms=()) -> list:
        """One edit per 4x4 in ``transforms`` (animation frames), all on the photo's single inversion."""
        from dataclasses import replace

        return [self.edit(replace(request, transform=m, name=f"{request.name}_{n:04d}"), progress, extra_terms)
                for n, m in enumerate(transforms)]

    def _prepare(self, request) -> _Prepared:
        height, width = request.image.shape[:2]
        layout = working_layout(width, height, self.settings.resolution)
        size = layout.content
        # several objects: a K x H x W stack of masks (and K transforms); guidance runs over their union
        masks = [layout.pad(resize(m, size, "mask"), fill=False)
                 for m in (request.mask if request.mask.ndim == 3 else [request.mask])]
        if not all(m.any() for m in masks):
            from ..geometry import GeometryError

            raise GeometryError("The object mask is empty at the working resolution: select the object (paint or "
                                "load a mask) and try again.")
        bg = None if request.bg_depth is None else layout.pad(resize(request.bg_depth, size, "nearest"))
        return _Prepared(image=layout.pad(resize(request.image, size, "image")), mask=np.logical_or.reduce(masks),
                         depth=layout.pad(resize(request.depth, size, "nearest").astype(np.float32)), bg_depth=bg,
                         camera=layout.camera(request.camera), size=layout.padded, layout=layout,
                         masks=masks if len(masks) > 1 else None)

    def _progress(self, progress, layout):
        """``progress`` with the previews cropped to the photo's part of the working frame."""
        if progress is None:
            return None

        def report(stage, step, total, preview=None):
            if preview is None:
                progress(stage, step, total)
            else:
                progress(stage, step, total, preview=lambda: layout.crop(preview()))

        return report

    def _memory_report(self, report) -> None:
        """Which low-memory fallbacks this run had on (enabled after an out-of-memory error, now or earlier)."""
        fallbacks = list(self.models.low_memory)
        report.set("memory_fallbacks", fallbacks)
        if fallbacks:
            where = {"cuda": "GPU", "mps": "Apple GPU", "cpu": "CPU"}.get(self.models.device.type, "device")
            report.set("memory_note", f"The {where} ran out of memory, so this ran with "
                       f"{', '.join(fallbacks)}: slower, and the models keep these settings until the engine is "
                       "released.")

    def _inversion(self, prep, prompt, cond, depth_original, report, progress):
        """The photo's inversion: from memory, the disk cache, or computed (and then stored)."""
        from ..device import dtype_name

        models, settings = self.models, self.settings
        key = inversion_key(prep.image, prep.depth, prompt, models.identity(), dtype_name(models.dtype),
                            settings.inversion_key())
        inversion = self._last[1] if self._last and self._last[0] == key else None
        warning = None
        if inversion is None:
            with report.stage("cache_load"):
                layers = settings.used_layers() if settings.guided_steps else ()
                inversion = self.cache.load(key, models.device, models.dtype, layers, _latent_shape(models, prep))
                warning = self.cache.warning
        report.set("cache", {"inversion": "hit" if inversion is not None else "miss", "key": key,
                             "folder": str(self.cache.folder) if self.cache.enabled else None})
        if warning:
            report.data["cache"]["warning"] = warning
        if inversion is None:
            with report.stage("inversion"):
                uncond = encode_prompt(models, "")
                latents0 = encode_image(models, prep.image)
                inversion = invert(models, latents0, cond, uncond, depth_original, settings, report.counter,
                                   self._progress(progress, prep.layout))
            with report.stage("cache_store"):
                if self.cache.store(key, inversion, {"prompt": prompt, "model": models.identity()}) is None \
                        and self.cache.warning:  # not written: the result stands, the report says why
                    report.data["cache"]["warning"] = self.cache.warning
        self._last = (key, inversion)
        report.set("inversion", {"method": inversion.method, "reconstruction_mse": inversion.reconstruction_mse})
        return inversion

    def _invert_only(self, request, progress) -> dict:
        from ..device import reset_peak_memory

        models = self.models
        reset_peak_memory(models.device)
        report = Report(models.device, models.dtype, models.identity())
        with report.stage("prepare"):
            prep = self._prepare(request)
        with report.stage("encode"):
            cond = encode_prompt(models, request.prompt)
            depth_original = depth_condition(prep.depth, _latent_hw(prep), models.device, models.dtype)
        self._inversion(prep, request.prompt, cond, depth_original, report, progress)
        report.set("working_size", list(prep.layout.content))
        report.set("padded_size", list(prep.size))
        report.set("settings", self.settings.to_dict())
        self._memory_report(report)
        return report.finish()

    def _edit(self, request, progress, extra_terms) -> EditResult:
        """The paper's edit, step by step (see the module docstring)."""
        import torch

        from ..device import reset_peak_memory

        models, settings = self.models, self.settings
        reset_peak_memory(models.device)
        report = Report(models.device, models.dtype, models.identity())
        with report.stage("prepare"):  # 1. the photo, mask and depth in the working frame
            prep = self._prepare(request)
        with report.stage("geometry"):  # 2. the 3D edit: edited depth, where the object lands, correspondences
            geo = self._geometry(prep, request.transform)
        with report.stage("encode"):  # 3. prompt and depth conditioning, original and edited
            cond = encode_prompt(models, request.prompt)
            depth_original = depth_condition(prep.depth, _latent_hw(prep), models.device, models.dtype)
            depth_edited = depth_condition(geo.edited_depth, _latent_hw(prep), models.device, models.dtype)
        # 4. the photo's inversion and its recorded activations
        inversion = self._inversion(prep, request.prompt, cond, depth_original, report, progress)
        # 5. guided sampling on the edited depth; extra terms decode their clean-latent estimate, so with
        # offloading the VAE must come along
        on_device = (models.unet, models.vae) if extra_terms else (models.unet,)
        with report.stage("guided_sampling"), models.using(*on_device):
            sampled = guided_sample(models, inversion, cond, depth_edited, geo.targets, settings, report.counter,
                                    extra_terms=extra_terms, progress=self._progress(progress, prep.layout),
                                    view=prep.layout.crop_image_tensor, generator=run_generator(settings.seed))
        with report.stage("decode"), models.using(models.vae), torch.no_grad():  # 6. decode and composite
            working = prep.layout.crop(tensor_to_image(decode_latents(models, sampled.latents)))
        with report.stage("composite"):
            image, alpha = self._composite(request, prep, geo, working)
        self._edit_report(report, request, prep, geo, sampled)
        return EditResult(image=image, working_image=working, edited_depth=prep.layout.crop(geo.edited_depth),
                          alpha=alpha, report=report.finish())

    def _geometry(self, prep, transform) -> _Geometry:
        """The engine.geometry reprojection in the working frame and the guidance targets it gives; with several
        objects (``prep.masks``, K transforms) every one is moved and the targets cover them all."""
        from ..geometry import OutOfViewError, reproject

        several = prep.masks is not None  # every object reprojected; only a single one must stay visible
        geo = reproject(prep.depth, prep.masks if several else prep.mask, list(transform) if several else transform,
                        prep.camera, bg_depth=prep.bg_depth, require_visible=not several)
        target_mask = np.asarray(geo.target_masks).any(axis=0)
        if not prep.layout.crop(target_mask).any():  # all of it in the padding band is out of the photo too
            raise OutOfViewError("The edit moves the object out of the frame of the photo, so nothing of it is "
                                 "visible: move it back into view")
        per_object = [np.asarray(geo.correspondences(k)) for k in range(len(geo.visible_fraction))]
        objects = np.concatenate([np.full(len(pairs), k) for k, pairs in enumerate(per_object)]) if per_object else None
        targets = GuidanceTargets(np.concatenate(per_object) if per_object else geo.correspondences(), prep.mask,
                                  target_mask, self.models.device, weighting=self.settings.pair_weighting,
                                  objects=objects)
        return _Geometry(edited_depth=np.asarray(geo.depth, dtype=np.float32), target_mask=target_mask,
                         targets=targets, visible_fraction=[float(v) for v in geo.visible_fraction])

    def _composite(self, request, prep, geo, working):
        """(photo-size image, working-size alpha): the changed region of the edit pasted into the photo."""
        settings = self.settings
        longer = max(prep.layout.content)
        alpha = prep.layout.crop(changed_region(prep.mask, geo.target_mask,
                                                int(round(settings.composite_dilate * longer)),
                                                int(round(settings.composite_feather * longer))))
        if settings.composite:
            return composite(request.image, working, alpha), alpha
        return resize(working, request.image.shape[1::-1], "image"), alpha

    def _edit_report(self, report, request, prep, geo, sampled) -> None:
        report.set("losses", sampled.losses.to_report() if sampled.losses else {"measured": False})
        report.set("extra_terms", sampled.extra_terms)
        report.set("image_size", list(request.image.shape[1::-1]))
        report.set("working_size", list(prep.layout.content))
        report.set("padded_size", list(prep.size))
        report.set("visible_fraction", geo.visible_fraction)
        report.set("settings", self.settings.to_dict())
        self._memory_report(report)
        report.set("name", request.name)


def _latent_hw(prep) -> tuple[int, int]:
    """(h, w) of the latent grid of the padded working frame (the VAE downsamples 8x)."""
    return prep.size[1] // 8, prep.size[0] // 8


def run_generator(seed: int):
    """The run's random number generator (CPU, as diffusers' pipelines take it), seeded from the settings: a
    long-lived engine never seeds or draws from the process-wide RNG."""
    import torch

    return torch.Generator("cpu").manual_seed(int(seed))


def _latent_shape(models, prep) -> tuple:
    """The shape of this photo's latents (what a cached inversion of it must have)."""
    vae = models.vae.config
    scale = 2 ** (len(vae.block_out_channels) - 1)
    return (1, vae.latent_channels, prep.image.shape[0] // scale, prep.image.shape[1] // scale)
