import pytest
import torch

from mobilenet_edu import MobileNetError, from_timm

timm = pytest.importorskip("timm")


def _randomised(name):
    torch.manual_seed(0)
    t = timm.create_model(name, pretrained=False).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in t.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # make BN statistics and affine non-trivial
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return t


@pytest.mark.parametrize("name,width", [("mobilenetv1_100", 1.0), ("mobilenetv1_125", 1.25)])
def test_from_timm_logits_match(name, width):
    t = _randomised(name)
    ours = from_timm(t.state_dict())
    assert ours.width == width and ours.act == "relu6" and ours.num_classes == 1000
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = (ours(x) - t(x)).abs().max().item()
    assert diff <= 1e-4, diff


def test_from_timm_rejects_other_state_dicts():
    with pytest.raises(MobileNetError, match="not a timm MobileNet v1"):
        from_timm({"weight": torch.zeros(1)})
