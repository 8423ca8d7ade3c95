"""Pictures as people have them, as real files written here by Pillow and OpenCV: phone photos with EXIF
orientation, 16-bit and float scans, palette and CMYK files, decompression bombs, channels-first arrays."""

from __future__ import annotations

import datetime
import io
import struct
import time
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

import camwidget as cw
from camwidget.errors import ImageError
from camwidget.inputs.images import read_picture, to_rgb_uint8

# What a photo viewer shows for raw pixels R stored with EXIF orientation o, written from the EXIF spec's
# table (not from Pillow): the inverse, raw pixels from an upright picture U, is what the camera stores.
RAW_FROM_UPRIGHT = {
    2: lambda u: u[:, ::-1],
    3: lambda u: u[::-1, ::-1],
    4: lambda u: u[::-1],
    5: lambda u: u.transpose(1, 0, 2),
    6: lambda u: np.rot90(u, 1),
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),
    8: lambda u: np.rot90(u, -1),
}


@pytest.fixture
def upright(rng):
    """A 60 wide × 120 tall picture that is not symmetric in any way."""
    picture = rng.integers(0, 256, (120, 60, 3), dtype=np.uint8)
    picture[:10, :10] = 255
    return picture


def with_orientation(raw: np.ndarray, orientation: int, fmt: str = "PNG") -> bytes:
    image = Image.fromarray(np.ascontiguousarray(raw))
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, fmt, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_by_path_bytes_and_pil(orientation, upright, tmp_path):
    data = with_orientation(RAW_FROM_UPRIGHT[orientation](upright), orientation)
    path = tmp_path / "phone.png"
    path.write_bytes(data)
    for source in (path, data, Image.open(io.BytesIO(data))):
        picture = read_picture(source, "phone")
        np.testing.assert_array_equal(picture.pixels, upright)
        assert f"EXIF orientation {orientation}" in picture.notes[0]


def test_a_phone_jpeg_is_explained_upright_in_the_explorer_and_by_upload(small, tmp_path):
    rows, cols = np.mgrid[0:120, 0:60]
    upright = np.stack([rows * 2, cols * 4, (rows + cols) % 256], -1).astype(np.uint8)  # smooth: JPEG keeps it
    upright[:20, :20] = 255
    data = with_orientation(RAW_FROM_UPRIGHT[6](upright), 6, "JPEG")
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    ex = cw.CAMExplorer(small, str(path))
    assert ex.overlay.shape == (120, 60, 3)  # as every photo viewer shows it, not 60 × 120
    assert "turned upright (EXIF orientation 6)" in ex.status_text
    shown = to_rgb_uint8(str(path))
    assert np.abs(shown.astype(int) - upright.astype(int)).mean() < 8  # JPEG, so close rather than equal
    ex.controls["upload"].value = (
        {
            "name": "upload.jpg",
            "type": "image/jpeg",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    assert ex.image_index == 1 and ex.overlay.shape == (120, 60, 3)
    np.testing.assert_array_equal(ex.session.pixels[1], shown)
    ex.close()


def test_sixteen_bit_png_is_read_at_its_range(tmp_path, rng):
    values = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "scan.png")
    assert Image.open(tmp_path / "scan.png").mode.startswith("I;16")
    picture = read_picture(tmp_path / "scan.png")
    np.testing.assert_array_equal(picture.pixels[..., 0], np.rint(values / 257.0).astype(np.uint8))
    assert "16-bit, read as 0-65535" in picture.notes
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    got = read_picture(tmp_path / "rgb16.png").pixels.astype(int)
    assert np.abs(got - rgb16 / 257.0).max() <= 1


def test_float_tiffs_grey_and_rgb(tmp_path, rng):
    grey = rng.uniform(0, 1, (20, 30)).astype(np.float32)
    Image.fromarray(grey, mode="F").save(tmp_path / "grey.tif")
    np.testing.assert_array_equal(
        read_picture(tmp_path / "grey.tif").pixels[..., 0], np.rint(grey * 255).astype(np.uint8)
    )
    rgb = rng.uniform(0, 1, (20, 30, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "rgb.tif"), rgb[..., ::-1])  # Pillow cannot decode this one: OpenCV does
    np.testing.assert_array_equal(read_picture(tmp_path / "rgb.tif").pixels, np.rint(rgb * 255).astype(np.uint8))


def test_thirty_two_bit_integer_palette_and_cmyk(tmp_path, rng):
    values = rng.integers(0, 65536, (20, 30)).astype(np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "i32.tif")
    picture = read_picture(tmp_path / "i32.tif")
    np.testing.assert_array_equal(picture.pixels[..., 0], np.rint(values / 257.0).astype(np.uint8))
    palette = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).quantize(16)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_picture(tmp_path / "p.png").pixels, np.asarray(palette.convert("RGB")))
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # pure red in CMYK
    red = read_picture(tmp_path / "cmyk.jpg").pixels.astype(int)
    assert (red[..., 0] > 230).all() and (red[..., 1:] < 25).all()


def test_arrays_are_read_by_dtype_never_by_an_outlier(rng):
    unit = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(to_rgb_uint8(unit), np.rint(unit * 255).astype(np.uint8))
    unit[0, 0, 0] = 1.0001
    with pytest.warns(UserWarning, match="1 value.s. above 1.*read as 0-1.*value_range=\\(0, 255\\)"):
        got = to_rgb_uint8(unit)
    np.testing.assert_array_equal(got, np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8))
    bytes_as_float = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="read as 0-255. If it is 0-1, pass value_range=\\(0, 1\\)"):
        np.testing.assert_array_equal(to_rgb_uint8(bytes_as_float), np.rint(bytes_as_float).astype(np.uint8))
    np.testing.assert_array_equal(
        to_rgb_uint8(bytes_as_float / 255, value_range=(0, 1)), np.rint(bytes_as_float).astype(np.uint8)
    )
    deep = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(deep)[..., 0], np.rint(deep / 257.0).astype(np.uint8))
    python_ints = np.array(rng.integers(0, 256, (16, 16, 3)), dtype=np.int64)
    np.testing.assert_array_equal(to_rgb_uint8(python_ints), python_ints.astype(np.uint8))
    with pytest.raises(ImageError, match="outside 0-255.*value_range"):
        to_rgb_uint8(python_ints * 300)
    with pytest.raises(ImageError, match="beyond both 0-1 and 0-255"):
        to_rgb_uint8(bytes_as_float * 10)


def test_channels_first_is_transposed_with_a_note_and_explained_in_compute_cam(small, rng):
    chw = rng.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    picture = read_picture(chw)
    np.testing.assert_array_equal(picture.pixels, chw.transpose(1, 2, 0))
    ex = cw.CAMExplorer(small, chw)
    assert "channels first (3, 40, 50), transposed" in ex.status_text
    ex.close()
    with pytest.raises(ImageError, match=r"channels first.*np.transpose\(images, \(0, 2, 3, 1\)\)"):
        cw.compute_cam(small, rng.uniform(0, 1, (2, 3, 32, 32)).astype(np.float32))


def test_an_empty_batch_and_unknown_save_formats_are_refused_clearly(small, rng, tmp_path):
    with pytest.raises(ValueError, match="no images given: the batch is empty"):
        cw.CAMExplorer(small, np.zeros((0, 32, 32, 3), np.uint8))
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for name in ("x.xbm", "x.h5"):
        with pytest.raises(ValueError, match=r"cannot save as .*\.png, \.jpg"):
            ex.save(tmp_path / name)
        assert not (tmp_path / name).exists()
    ex.save(tmp_path / "x.webp")
    assert Image.open(tmp_path / "x.webp").size == (32, 32)
    ex.close()


# -- decompression bombs ------------------------------------------------------------------------------------


def bomb(width: int, height: int) -> bytes:
    """A real PNG file whose header says width × height: a 1×1 picture with its IHDR rewritten (the data
    would never be decoded, which is what a bomb relies on)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    body = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = body
    data[29:33] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


@pytest.mark.parametrize("side", [30000, 13000])
def test_a_bomb_is_refused_from_its_header_quickly_and_cheaply(side, small, rng, tmp_path):
    data = bomb(side, side)
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageError, match=f"{side * side / 1e6:.0f} megapixels, more than the limit of 50"):
        to_rgb_uint8(str(path))
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 1.0 and peak < 100 * 2**20
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    shown, cam = ex.controls["overlay"].value, ex.cam
    with pytest.raises(ImageError, match="megapixels"):
        ex.add_image(str(path))
    ex.controls["upload"].value = (
        {
            "name": "bomb.png",
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    assert "could not use 'bomb.png'" in ex.status_text and "megapixels" in ex.status_text
    assert ex.controls["upload"].value == ()  # the control is cleared
    assert len(ex.session.pixels) == 1 and ex.controls["overlay"].value == shown  # nothing lost, view unchanged
    np.testing.assert_array_equal(ex.cam, cam)
    ex.close()


def test_the_pixel_limit_is_the_users_to_set(rng, tmp_path):
    Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    with pytest.raises(ImageError, match="limit of 0 megapixels"):
        read_picture(tmp_path / "p.png", max_pixels=5000)
    assert read_picture(tmp_path / "p.png", max_pixels=10000).pixels.shape == (100, 100, 3)


def test_an_upload_that_raises_anything_is_said_and_cleared(small, rng, monkeypatch):
    ex = cw.CAMExplorer(small, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    import camwidget.inputs.images

    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(camwidget.inputs.images.Image, "open", broken)
    ex.controls["upload"].value = (
        {
            "name": "x.png",
            "type": "image/png",
            "size": 3,
            "content": memoryview(b"abc"),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    assert "could not use 'x.png': MemoryError: no room" in ex.status_text
    assert ex.controls["upload"].value == () and len(ex.session.pixels) == 1
    ex.close()


# -- display size ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # a 12-megapixel picture blended and saved
def test_a_large_picture_is_blended_at_display_size_and_saved_at_full_size(small, rng, tmp_path):
    big = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    ex = cw.CAMExplorer(small, big)
    shown = np.asarray(Image.open(io.BytesIO(ex.controls["overlay"].value)))
    assert shown.shape == (768, 1024, 3)
    assert ex.overlay.shape == (3000, 4000, 3)
    np.testing.assert_array_equal(ex.overlay, cw.overlay(big, ex.cam, ex.alpha, ex.colormap))
    ex.save(tmp_path / "full.png")
    assert Image.open(tmp_path / "full.png").size == (4000, 3000)
    ex.close()
