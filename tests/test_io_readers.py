"""engine.io, the one reader of photos, masks and depth maps: every format, EXIF orientation, the cut-out rule,
the size rule and the bad inputs, with files the tests write (small images, no models)."""

from __future__ import annotations

import numpy as np
import OpenEXR
import pytest
from PIL import Image, ImageOps

from engine import io
from engine.errors import BadDepth, BadImage, BadInput, BadMask, BadParams, InputNotFound, SizeMismatch

H, W = 48, 64


def smooth_photo(height=H, width=W) -> np.ndarray:
    """A smooth RGB gradient (JPEG keeps it within a few levels)."""
    v, u = np.mgrid[0:height, 0:width]
    return np.stack([u * 255 // max(1, width - 1), v * 255 // max(1, height - 1),
                     np.full_like(u, 128)], axis=2).astype(np.uint8)


def true_mask(height=H, width=W) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width]
    return ((u - width / 2) ** 2 + (v - height / 2) ** 2) < (min(height, width) / 3) ** 2


def cutout(path, mask, seed=0):
    """An RGBA cut-out: noisy colour everywhere (also where transparent), the alpha is the mask."""
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (*mask.shape, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(mask, 255, 0)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def write_exr(path, channels: dict) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {name: np.ascontiguousarray(a, np.float32) for name, a in channels.items()}) as f:
        f.write(str(path))


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def oriented_jpeg(path, displayed: np.ndarray, orientation: int = 6):
    """A phone-style JPEG: the pixels stored turned, with the EXIF orientation that turns them back."""
    stored = {6: np.rot90(displayed, 1), 8: np.rot90(displayed, -1), 3: displayed[::-1, ::-1]}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=98)
    return path


# --- photos ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp", ".bmp"])
def test_lossless_photo_formats(tmp_path, suffix):
    photo = smooth_photo()
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(photo).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    np.testing.assert_array_equal(io.read_photo(path), photo)


def test_16_bit_grey_and_rgba_photos(tmp_path):
    grey16 = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 20).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    read = io.read_photo(tmp_path / "g16.png")
    assert read.shape == (H, W, 3) and np.array_equal(read[..., 0], (grey16 // 257).astype(np.uint8))
    photo = smooth_photo()
    rgba = np.dstack([photo, np.full((H, W), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(io.read_photo(tmp_path / "rgba.png"), photo)  # alpha dropped


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pil(orientation):
    stored = np.arange(3 * 5 * 2).reshape(3, 5, 2).astype(np.uint8)
    image = Image.fromarray(stored[..., 0])
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(io.to_display(stored, orientation)[..., 0], expected)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp", ".jpg"])
def test_every_orientation_of_every_format_as_pil_shows_it(tmp_path, suffix):
    photo = smooth_photo(40, 64)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"p{orientation}{suffix}"
        Image.fromarray(photo).save(path, exif=exif, **{".webp": {"lossless": True}, ".jpg": {"quality": 98}}.get(
            suffix, {}))
        with Image.open(path) as image:
            expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB")).astype(int)
        read = io.read_photo(path).astype(int)
        assert read.shape == expected.shape and np.abs(read - expected).mean() < 1.0, orientation
        assert io.photo_shape(path) == io.PhotoShape(read.shape[1], read.shape[0], orientation)


def test_phone_jpeg_is_read_as_displayed(tmp_path):
    displayed = smooth_photo(96, 64)  # portrait, stored landscape
    path = oriented_jpeg(tmp_path / "phone.jpg", displayed)
    assert Image.open(path).size == (96, 64)
    read = io.read_photo(path)
    assert read.shape == displayed.shape and np.abs(read.astype(int) - displayed).mean() < 2.0
    assert io.photo_shape(path) == io.PhotoShape(64, 96, 6)
    upside_down = io.read_photo(oriented_jpeg(tmp_path / "180.jpg", displayed, 3))
    assert np.abs(upside_down.astype(int) - displayed).mean() < 2.0


# --- masks -------------------------------------------------------------------------------------------------
def test_rgba_cutout_alpha_is_the_mask(tmp_path):
    mask = true_mask()
    assert iou(io.read_mask(cutout(tmp_path / "cut.png", mask)), mask) == 1.0
    la = np.dstack([np.random.default_rng(1).integers(0, 256, (H, W)), mask * 255]).astype(np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert iou(io.read_mask(tmp_path / "la.png"), mask) == 1.0
    opaque = np.dstack([np.repeat(mask[..., None] * 255, 3, axis=2), np.full((H, W), 255)]).astype(np.uint8)
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")  # white on black saved with an opaque alpha
    assert iou(io.read_mask(tmp_path / "opaque.png"), mask) == 1.0


@pytest.mark.parametrize("kind", ["png8", "png16", "jpeg", "tif", "webp", "palette", "npy_bool", "npy_float"])
def test_mask_formats(tmp_path, kind):
    mask = true_mask()
    path = tmp_path / {"npy_bool": "m.npy", "npy_float": "m.npy", "png16": "m.png", "png8": "m.png",
                       "palette": "m.png", "jpeg": "m.jpg", "tif": "m.tif", "webp": "m.webp"}[kind]
    if kind == "png16":
        Image.fromarray(mask.astype(np.uint16) * 65535).save(path)
    elif kind == "palette":
        Image.fromarray(mask.astype(np.uint8) * 255).convert("P").save(path)
    elif kind == "npy_bool":
        np.save(path, mask)
    elif kind == "npy_float":
        np.save(path, mask.astype(np.float32))
    else:
        Image.fromarray(mask.astype(np.uint8) * 255).save(path, **({"quality": 95} if kind == "jpeg" else {}))
    assert iou(io.read_mask(path), mask) > (0.98 if kind == "jpeg" else 0.999999)


def test_blender_pixels_follow_the_same_rule():
    """Blender's painted images are float RGBA in [0, 1] with an opaque alpha: the colour decides; a loaded cut-out
    (alpha not uniform): the alpha."""
    mask = true_mask()
    painted = np.ones((H, W, 4), np.float32)
    painted[..., :3] = np.where(mask[..., None], 1.0, 0.3)
    assert np.array_equal(io.mask_from_pixels(painted, 1.0), mask)
    painted[..., 3] = mask
    painted[..., :3] = 0.9
    assert np.array_equal(io.mask_from_pixels(painted, 1.0), mask)


# --- depth -------------------------------------------------------------------------------------------------
def depth_map(height=H, width=W) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width]
    return (2.0 + u * 0.01 + v * 0.02).astype(np.float32)


@pytest.mark.parametrize("channel", ["Y", "Z", "R", "depth"])
def test_exr_depth_channels(tmp_path, channel):
    depth = depth_map()
    others = {"G": depth * 0 + 9, "B": depth * 0 + 9} if channel == "R" else {"A": depth * 0 + 1}
    write_exr(tmp_path / "d.exr", {channel: depth, **others})
    np.testing.assert_array_equal(io.read_depth(tmp_path / "d.exr"), depth)


def test_depth_npy_and_16_bit_png(tmp_path):
    depth = depth_map()
    np.save(tmp_path / "d.npy", depth)
    np.testing.assert_array_equal(io.read_depth(tmp_path / "d.npy"), depth)
    millimetres = np.round(depth * 1000).astype(np.uint16)
    Image.fromarray(millimetres).save(tmp_path / "d16.png")
    np.testing.assert_allclose(io.read_depth(tmp_path / "d16.png"), millimetres / 1000.0, rtol=1e-6)


def test_unusable_depth_files(tmp_path):
    Image.fromarray((depth_map() * 10).astype(np.uint8)).save(tmp_path / "d8.png")
    with pytest.raises(BadDepth, match="8 bits per pixel"):
        io.read_depth(tmp_path / "d8.png")
    write_exr(tmp_path / "odd.exr", {"foo": depth_map(), "bar": depth_map()})
    with pytest.raises(BadDepth, match="no depth channel"):
        io.read_depth(tmp_path / "odd.exr")
    (tmp_path / "broken.exr").write_bytes(b"not an exr")
    with pytest.raises(BadDepth, match="could not be read"):
        io.read_depth(tmp_path / "broken.exr")
    np.save(tmp_path / "rgb.npy", np.zeros((H, W, 3), np.float32))
    with pytest.raises(BadDepth, match="one number per pixel"):
        io.read_depth(tmp_path / "rgb.npy")


# --- sizes -------------------------------------------------------------------------------------------------
def test_size_rule_with_a_turned_photo(tmp_path):
    displayed = depth_map(96, 64)
    photo = io.photo_shape(oriented_jpeg(tmp_path / "phone.jpg", smooth_photo(96, 64)))
    np.save(tmp_path / "displayed.npy", displayed)
    np.save(tmp_path / "stored.npy", np.rot90(displayed, 1))  # made from the stored (landscape) pixels
    np.testing.assert_array_equal(io.read_depth(tmp_path / "displayed.npy", photo), displayed)
    np.testing.assert_array_equal(io.read_depth(tmp_path / "stored.npy", photo), displayed)
    mask = true_mask(96, 64)
    cutout(tmp_path / "stored_mask.png", np.rot90(mask, 1))
    assert iou(io.read_mask(tmp_path / "stored_mask.png", photo), mask) == 1.0
    np.save(tmp_path / "small.npy", depth_map(48, 32))
    with pytest.raises(SizeMismatch, match="32x48 pixels but the photo is 64x96"):
        io.read_depth(tmp_path / "small.npy", photo)
    upright = io.PhotoShape(64, 96, 1)
    with pytest.raises(SizeMismatch):  # the stored size is only taken for a photo stored turned
        io.read_depth(tmp_path / "stored.npy", upright)


# --- bad inputs --------------------------------------------------------------------------------------------
READERS = {"photo": io.read_photo, "mask": io.read_mask, "depth": io.read_depth}


@pytest.mark.parametrize("reader", READERS)
def test_bad_paths(tmp_path, reader):
    read = READERS[reader]
    with pytest.raises(InputNotFound, match="does not exist"):
        read(tmp_path / "nope.png")
    with pytest.raises(BadInput, match="NUL byte"):
        read(str(tmp_path / "a\x00b.png"))
    with pytest.raises(BadInput, match="is a folder"):
        read(tmp_path)
    with pytest.raises(BadParams, match="not list"):
        read([str(tmp_path / "a.png")])


@pytest.mark.parametrize("reader", READERS)
def test_decompression_bomb_is_bad_input(tmp_path, monkeypatch, reader):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 64), np.uint16)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(BadInput, match="decompression bomb"):
        READERS[reader](big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # beyond twice the limit PIL itself raises
    with pytest.raises(BadInput, match="decompression bomb"):
        READERS[reader](big)


def test_files_that_are_not_images(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    with pytest.raises(BadImage):
        io.read_photo(junk)
    with pytest.raises(BadMask):
        io.read_mask(junk)
    with pytest.raises(BadDepth):
        io.read_depth(junk)


# --- EXIF camera numbers -----------------------------------------------------------------------------------
def test_exif_camera_numbers(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769).update({37386: 4.2, 41989: 26, 41486: 1000.0, 41487: 1000.0, 41488: 3,
                                 40962: 4000, 40963: 3000})
    Image.fromarray(smooth_photo()).save(tmp_path / "cam.jpg", exif=exif)
    numbers = io.exif_camera_numbers(tmp_path / "cam.jpg")
    assert numbers == {"focal_length_mm": 4.2, "focal_length_35mm": 26.0, "pixel_x_dimension": 4000.0,
                       "pixel_y_dimension": 3000.0, "focal_plane_x_resolution": 1000.0,
                       "focal_plane_y_resolution": 1000.0, "focal_plane_unit_mm": 10.0, "orientation": 6,
                       "has_exif": True}
    Image.fromarray(smooth_photo()).save(tmp_path / "plain.png")
    plain = io.exif_camera_numbers(tmp_path / "plain.png")
    assert plain["orientation"] == 1 and not plain["has_exif"]
    assert all(value is None for key, value in plain.items() if key not in ("orientation", "has_exif"))
    with pytest.raises(InputNotFound):
        io.exif_camera_numbers(tmp_path / "nope.jpg")
