"""The tutorial's pieces that lessons measure: its random test crop (lesson 06)."""

import torch
import torch.nn.functional as F

from mobilenet_edu.tutorial import tutorial_crop


def batches(n=6, size=32, batch=4):
    torch.manual_seed(0)
    x = torch.randn(n, 3, size, size)
    y = torch.arange(n)
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def test_tutorial_crop_keeps_shapes_labels_and_layout():
    out = list(tutorial_crop(batches(), seed=0))
    assert [tuple(x.shape) for x, _ in out] == [(4, 3, 32, 32), (2, 3, 32, 32)]
    assert torch.equal(torch.cat([y for _, y in out]), torch.arange(6))
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x, _ in out)


def test_tutorial_crop_is_a_resized_window_mirrored_or_not():
    data = batches()
    [(x, _), _] = data
    [(views, _), _] = list(tutorial_crop(data, seed=1, crop=28))
    for img, view in zip(x, views):
        candidates = []
        for top in range(5):
            for left in range(5):
                w = F.interpolate(img[None, :, top:top + 28, left:left + 28], size=(32, 32), mode="bilinear",
                                  align_corners=False)[0]
                candidates += [w, w.flip(2)]
        assert any(torch.allclose(view, c) for c in candidates)


def test_tutorial_crop_draws_come_from_the_seed():
    a = torch.cat([x for x, _ in tutorial_crop(batches(), seed=0)])
    b = torch.cat([x for x, _ in tutorial_crop(batches(), seed=0)])
    c = torch.cat([x for x, _ in tutorial_crop(batches(), seed=1)])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_full_size_crop_only_mirrors():
    [(x, _)] = batches(n=8, batch=8)
    [(views, _)] = list(tutorial_crop([(x, torch.zeros(8))], seed=0, crop=32))
    mirrored = [torch.equal(v, img.flip(2)) and not torch.equal(v, img) for img, v in zip(x, views)]
    assert all(torch.equal(v, img) or m for img, v, m in zip(x, views, mirrored)) and 0 < sum(mirrored) < 8
