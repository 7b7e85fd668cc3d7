"""Prediction on any image a learner might upload: odd modes are predicted, broken files are one line."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from testkit import assert_one_line_error

from mobilenet_edu import MobileNetError
from mobilenet_edu.inference import Predictor


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png() -> bytes:
    """A tiny file that declares 100,000 x 100,000 pixels: PIL refuses it as a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0")) + _chunk(b"IEND", b"")


def odd_images() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8), "RGB")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 255, (40, 70), dtype=np.uint8), "L"))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    i16 = Image.fromarray(rng.integers(0, 65535, (33, 90), dtype=np.uint16))
    jpg = io.BytesIO()
    rgb.save(jpg, format="JPEG")
    return {"gray.png": png_bytes(rgb.convert("L")), "rgba.png": png_bytes(rgba), "palette.png": png_bytes(pal),
            "palette-transparent.png": png_bytes(pal_t), "16bit.png": png_bytes(i16),
            "tiny-1x1.png": png_bytes(Image.new("RGB", (1, 1), (200, 10, 10))), "photo.jpg": jpg.getvalue(),
            "cmyk.jpg": _jpeg(rgb.convert("CMYK"))}


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def broken_images() -> dict[str, bytes]:
    good = odd_images()["photo.jpg"]
    return {"truncated.jpg": good[: len(good) // 3], "zero-byte.png": b"", "notes.txt": b"not an image at all\n",
            "bomb.png": bomb_png(), "png-header-only.png": b"\x89PNG\r\n\x1a\n"}


@pytest.fixture(scope="module")
def predictor():
    return Predictor("cifar10")


@pytest.mark.parametrize("name", sorted(odd_images()))
def test_any_mode_or_size_is_predicted(predictor, tmp_path, name):
    data = odd_images()[name]
    (tmp_path / name).write_bytes(data)
    for source in (tmp_path / name, data):  # a path, and the bytes of an upload
        top = predictor.predict(source, top_k=3, name=name)
        assert len(top) == 3 and all(c in predictor.classes for c, _ in top)
        assert 0 < sum(p for _, p in top) <= 1.0001


@pytest.mark.parametrize("name", sorted(broken_images()))
def test_a_broken_file_is_one_readable_line(predictor, tmp_path, name):
    data = broken_images()[name]
    (tmp_path / name).write_bytes(data)
    for source in (tmp_path / name, data):
        with pytest.raises(MobileNetError) as e:
            predictor.predict(source, name=name)
        msg = str(e.value)
        assert "\n" not in msg and name in msg and ("cannot read image" in msg), msg
        assert " at 0x" not in msg, msg  # an upload is named, never shown as a memory address


def test_cli_predicts_the_good_files_and_reports_each_bad_one(cli, tmp_path):
    files = []
    for name, data in {**broken_images(), "photo.jpg": odd_images()["photo.jpg"],
                       "gray.png": odd_images()["gray.png"]}.items():
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    r = cli("predict", "--weights", "cifar10", "--json", *files)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    out = {o["image"].rsplit("/", 1)[-1]: o for o in json.loads(r.stdout)}
    assert set(out) == {f.name for f in files}
    assert len(out["photo.jpg"]["top"]) == 5 and len(out["gray.png"]["top"]) == 5
    errors = r.stderr.strip().splitlines()
    assert len(errors) == len(broken_images()), r.stderr
    for name in broken_images():
        assert "error" in out[name] and any(name in line for line in errors)
    assert_one_line_error(cli("predict", "--weights", "cifar10", tmp_path / "bomb.png"), "bomb.png")
