import os
import pickle

import pytest
import torch

from mobilenet_edu import MobileNetError, MobileNetV1
from mobilenet_edu.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights


def _card(m):
    return {"arch": m.arch_args, "mean": [0.5] * 3, "std": [0.25] * 3, "input_size": 32,
            "classes": [f"c{i}" for i in range(m.num_classes)]}


def test_weights_round_trip_with_card(tmp_path):
    m = MobileNetV1(num_classes=4, width=0.25, small_input=True)
    save_weights(m, tmp_path / "weights.safetensors", _card(m))
    assert (tmp_path / "card.json").is_file()
    back = load_weights(tmp_path / "weights.safetensors")
    assert not back.training and back.pretrained_cfg["classes"] == ["c0", "c1", "c2", "c3"]
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(back(x), m.eval()(x))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ckpt.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(MobileNetError, match="refusing"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()
    torch.save({"model": Evil()}, path)  # also in torch's zip format
    with pytest.raises(MobileNetError, match="refusing"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_bad_weight_files_are_one_clear_error(tmp_path):
    m = MobileNetV1(num_classes=4, width=0.25, small_input=True)
    good = save_weights(m, tmp_path / "good.safetensors", _card(m))
    (tmp_path / "text.safetensors").write_text("not weights at all")
    with pytest.raises(MobileNetError, match="not a readable safetensors"):
        load_weights(tmp_path / "text.safetensors")
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(MobileNetError, match="not a readable safetensors"):
        load_weights(tmp_path / "cut.safetensors")
    other = MobileNetV1(num_classes=4, width=0.5, small_input=True)
    save_weights(other, tmp_path / "mixed.safetensors", _card(m))  # tensors of another width
    with pytest.raises(MobileNetError, match="do not fit"):
        load_weights(tmp_path / "mixed.safetensors")
    with pytest.raises(MobileNetError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")
