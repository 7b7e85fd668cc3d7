import pickle

import numpy as np
import pytest
import torch
from testkit import CIFAR_DIR, needs_cifar

from mobilenet_edu import MobileNetError
from mobilenet_edu.data import TensorBatches, load_cifar10, pil_to_rgb, synthetic


def _batches(world, rank, bs, **kw):
    x, y = synthetic(64, 4, 32, seed=0)
    return TensorBatches(x, y, bs, (0.5,) * 3, (0.25,) * 3, True, seed=3, rank=rank, world=world, **kw)


def test_shards_are_disjoint_and_cover_the_epoch():
    for epoch in (0, 1):
        shards = []
        for r in range(2):
            b = _batches(2, r, 8)
            b.set_epoch(epoch)
            shards.append(b.indices())
        a, c = set(shards[0].tolist()), set(shards[1].tolist())
        assert not a & c and a | c == set(range(64))
    b0, b1 = _batches(1, 0, 8), _batches(1, 0, 8)
    b1.set_epoch(1)
    assert not torch.equal(b0.indices(), b1.indices())  # a new shuffle every epoch


def test_augmentation_independent_of_world_size():
    one = list(_batches(1, 0, 16))
    two = [list(_batches(2, r, 8)) for r in range(2)]
    for k in range(len(one)):
        x1, y1 = one[k]
        x2 = torch.cat([two[0][k][0], two[1][k][0]])
        y2 = torch.cat([two[0][k][1], two[1][k][1]])
        o1, o2 = y1.argsort(stable=True), y2.argsort(stable=True)
        # same samples with the same crops/flips: compare as multisets via sorted sums
        assert sorted(x1.sum((1, 2, 3)).tolist()) == pytest.approx(sorted(x2.sum((1, 2, 3)).tolist()), rel=1e-5)
        assert torch.equal(y1[o1].sort().values, y2[o2].sort().values)


def test_batches_are_augmented_normalised_channels_last():
    b = _batches(1, 0, 16, cutout=8)
    x, y = next(iter(b))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (16,)
    assert x.is_contiguous(memory_format=torch.channels_last)
    plain = TensorBatches(*synthetic(64, 4, 32, seed=0), 16, (0.5,) * 3, (0.25,) * 3, False)
    xe, _ = next(iter(plain))
    assert not torch.allclose(x, xe)  # training batches differ from the raw images


def test_eval_batches_cover_all_once():
    x, y = synthetic(70, 4, 32)
    seen = []
    for r in range(3):
        b = TensorBatches(x, y, 16, (0.5,) * 3, (0.25,) * 3, False, rank=r, world=3)
        seen += b.indices().tolist()
    assert sorted(seen) == list(range(70))


@needs_cifar
def test_cifar10_loads_and_content_hash_checks(tmp_path):
    trx, tr_y, tex, tey = load_cifar10(CIFAR_DIR, download=False)
    assert trx.shape == (50000, 3, 32, 32) and tex.shape == (10000, 3, 32, 32) and trx.dtype == torch.uint8
    assert torch.bincount(tey).tolist() == [1000] * 10
    assert trx.float().mean((0, 2, 3)).tolist() == pytest.approx([125.307, 122.950, 113.865], abs=0.01)
    # a copy with one changed label fails the content check
    bad = tmp_path / "cifar-10-batches-py"
    bad.mkdir()
    for f in (CIFAR_DIR / "cifar-10-batches-py").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    with open(bad / "test_batch", "rb") as f:
        d = pickle.load(f, encoding="bytes")
    d[b"labels"][0] = (d[b"labels"][0] + 1) % 10
    with open(bad / "test_batch", "wb") as f:
        pickle.dump(d, f)
    with pytest.raises(MobileNetError, match="does not match"):
        load_cifar10(tmp_path, download=False)


def test_missing_cifar_and_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as u

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(u, "download_and_extract_archive", offline)
    with pytest.raises(MobileNetError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # no empty folder left behind


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "I;16", "I", "F", "CMYK"])
def test_any_pil_mode_becomes_rgb(mode):
    from PIL import Image

    arr = (np.arange(20 * 30).reshape(20, 30) % 256).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode) if mode != "I;16" else Image.fromarray(arr.astype(np.uint16) * 257)
    assert img.mode == mode
    out = pil_to_rgb(img)
    assert out.mode == "RGB" and out.size == (30, 20)
    if mode in ("L", "I;16", "RGB"):
        assert abs(np.asarray(out)[..., 0].astype(int) - arr.astype(int)).max() <= 1


def test_a_phone_photo_is_turned_upright(tmp_path):
    # A phone saves a portrait photo as landscape pixels plus the EXIF tag Orientation = 6 ("turn 90° clockwise").
    from PIL import Image

    from mobilenet_edu.data import open_image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red as stored, so the top half once turned clockwise
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    upright = open_image(tmp_path / "portrait.jpg")
    assert upright.size == (20, 40)  # width 20, height 40: standing
    arr = np.asarray(upright).astype(int)
    assert arr[:20, :, 0].mean() > 200 and arr[20:, :, 0].mean() < 50  # the red half is on top
    stored = open_image((tmp_path / "portrait.jpg").read_bytes(), "portrait.jpg")  # an upload: the same
    assert stored.size == (20, 40)


def test_a_heic_photo_gets_a_hint(tmp_path):
    from mobilenet_edu.data import open_image

    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # the start of an iPhone photo
    for source, name in ((heic, "IMG_0001.HEIC"), (heic, "photo.jpg")):  # named as it is, or renamed
        with pytest.raises(MobileNetError, match="HEIC/HEIF") as e:
            open_image(source, name)
        assert "\n" not in str(e.value)
    (tmp_path / "IMG_0002.jpg").write_bytes(heic)
    with pytest.raises(MobileNetError, match="HEIC/HEIF"):
        open_image(tmp_path / "IMG_0002.jpg")
    with pytest.raises(MobileNetError) as e:  # a broken JPEG gets no such hint
        open_image(b"\xff\xd8\xff\xe0 not really", "broken.jpg")
    assert "HEIC" not in str(e.value)
