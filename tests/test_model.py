import pytest
import torch
from torch import nn

from mobilenet_edu import BLOCKS, MobileNetError, MobileNetV1
from mobilenet_edu.profile import profile


def test_table1_blocks():
    assert len(BLOCKS) == 13  # the tutorial this replaces had 12
    assert [c for c, _ in BLOCKS] == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    assert [s for _, s in BLOCKS] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]  # last block stride 1


def test_every_conv_is_biasless_then_bn_then_act():
    m = MobileNetV1()
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert len(convs) == 1 + 2 * 13
    assert all(c.bias is None for c in convs)
    seqs = [m.stem] + [b.dw for b in m.blocks] + [b.pw for b in m.blocks]
    for s in seqs:
        assert isinstance(s[0], nn.Conv2d) and isinstance(s[1], nn.BatchNorm2d) and isinstance(s[2], nn.ReLU)
    assert isinstance(MobileNetV1(act="relu6").stem[2], nn.ReLU6)


@pytest.mark.parametrize("res", [32, 33, 100, 224])
def test_any_resolution_ge_32(res):
    m = MobileNetV1(num_classes=7, width=0.25).eval()
    assert m(torch.randn(2, 3, res, res)).shape == (2, 7)


def test_small_input_keeps_32px_and_downsamples_to_2():
    m = MobileNetV1(num_classes=10, small_input=True).eval()
    assert m.stem[0].stride == (1, 1)
    assert m.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1024, 2, 2)
    # 4x the mult-adds of the full-stem model at 32 px, still ~12x less than upscaling to 224
    small = profile(m, 32)["macs"]
    assert small < profile(MobileNetV1(num_classes=10), 224)["macs"] / 11


def test_feature_maps_strides_and_channels():
    m = MobileNetV1().eval()
    x = torch.randn(1, 3, 224, 224)
    feats = m.forward_intermediates(x)
    assert [f.shape[-1] for f in feats] == [112, 56, 28, 14, 7]
    assert [224 // f.shape[-1] for f in feats] == [2, 4, 8, 16, 32]
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 1024]
    assert [f["num_chs"] for f in m.feature_info] == [64, 128, 256, 512, 1024]
    assert [f["reduction"] for f in m.feature_info] == [2, 4, 8, 16, 32]
    torch.testing.assert_close(feats[-1], m.forward_features(x))


def test_timm_style_api():
    m = MobileNetV1(num_classes=10, width=0.5).eval()
    x = torch.randn(2, 3, 64, 64)
    f = m.forward_features(x)
    assert m.forward_head(f, pre_logits=True).shape == (2, 512)
    torch.testing.assert_close(m.forward_head(f), m(x))
    m.reset_classifier(3)
    assert m(x).shape == (2, 3)
    m.reset_classifier(0)
    assert m(x).shape == (2, 512)


def test_width_rounding_reproduces_paper_channels():
    for w, stem, last in [(1.0, 32, 1024), (0.75, 24, 768), (0.5, 16, 512), (0.25, 8, 256)]:
        m = MobileNetV1(width=w)
        assert m.stem[0].out_channels == stem and m.num_features == last
    assert MobileNetV1(width=0.01).stem[0].out_channels == 1  # never zero channels
    assert MobileNetV1(width=1.3).num_features == 1331


def test_init_like_torchvision():
    m = MobileNetV1()
    bn = m.stem[1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert torch.all(m.classifier.bias == 0) and m.classifier.weight.std() < 0.02
    w = m.blocks[12].pw[0].weight  # kaiming normal, fan_out = 1024: std sqrt(2/1024)
    assert abs(w.std().item() - (2 / 1024) ** 0.5) < 0.003


@pytest.mark.parametrize("kwargs,needle", [
    (dict(width=0), "width"), (dict(width=-1.0), "width"), (dict(act="gelu"), "act"),
    (dict(dropout=1.5), "dropout"), (dict(in_chans=0), "in_chans")])
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(MobileNetError, match=needle):
        MobileNetV1(**kwargs)


def test_bad_inputs_name_the_problem():
    m = MobileNetV1(num_classes=10, width=0.25).eval()
    with pytest.raises(MobileNetError, match="expected 3 input channels, got 1"):
        m(torch.randn(1, 1, 64, 64))
    with pytest.raises(MobileNetError, match="at least 32x32"):
        m(torch.randn(1, 3, 31, 64))
    with pytest.raises(MobileNetError, match="4-D"):
        m(torch.randn(3, 64, 64))
    small = MobileNetV1(num_classes=10, width=0.25, small_input=True).eval()
    assert small(torch.randn(1, 3, 16, 16)).shape == (1, 10)  # total stride 16: a one-pixel last map
    with pytest.raises(MobileNetError, match="small-input MobileNet v1 needs at least 16x16"):
        small(torch.randn(1, 3, 15, 16))
