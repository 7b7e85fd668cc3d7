"""`doctor`: each check, and each way it fails, by handing it what it reads (never by breaking the machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import mobilenet_edu
from mobilenet_edu import checkup
from mobilenet_edu.checkup import (
    DISK_FOR_DOWNLOAD,
    FAIL,
    OK,
    WARN,
    Check,
    Report,
    check_cifar10,
    check_device,
    check_disk,
    check_python,
    check_requirement,
    check_torch_build,
    check_widgets,
    requirements,
)

ROOT = Path(__file__).resolve().parents[1]


def fake_cifar(folder: Path, empty: str | None = None) -> Path:
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(b"" if name == empty else b"x")
    return d


def test_report_lines_carry_the_status_and_the_fix():
    r = Report([Check(OK, "a", "fine", "never shown"), Check(FAIL, "b", "broken", "do this")])
    assert str(r).splitlines() == ["[OK]   a: fine", "[FAIL] b: broken -> fix: do this"]
    assert not r.ok and Report([Check(WARN, "c", "slow", "x")]).ok


def test_python():
    assert check_python((3, 11, 2), ">=3.10").status == OK
    c = check_python((3, 9, 18), ">=3.10")
    assert c.status == FAIL and "3.9.18" in c.message and "Python 3.10" in c.fix
    assert check_python().status == OK  # this machine runs the tests


def test_requirements_come_from_requirements_txt():
    lines = requirements()
    assert any(ln.startswith("torch>=") for ln in lines) and not any(ln.startswith("-") for ln in lines)
    assert len(lines) == len([ln for ln in (ROOT / "requirements.txt").read_text().splitlines()
                              if ln.strip() and not ln.lstrip().startswith(("#", "-"))])


def test_requirement_installed_missing_and_too_old():
    ok = check_requirement("numpy>=1.24", version=lambda name: "2.1.0")
    assert ok.status == OK and ok.message == "2.1.0 (>=1.24)"
    missing = check_requirement("torch>=2.5,<3", version=lambda name: None)
    assert missing.status == FAIL and "not installed" in missing.message
    assert missing.fix == "python -m pip install 'torch>=2.5,<3'"
    old = check_requirement("torch>=2.5,<3", version=lambda name: "2.1.0+cpu")
    assert old.status == FAIL and "2.1.0+cpu installed, need >=2.5,<3" in old.message and "install -U" in old.fix
    assert check_requirement("torch>=2.5,<3", version=lambda name: "2.6.0+cpu").status == OK  # local label
    assert check_requirement("pywin32>=300; sys_platform == 'nonexistent'") is None


def _torch(cuda=None, available=False, hip=None):
    return SimpleNamespace(__version__="2.6.0", version=SimpleNamespace(cuda=cuda, hip=hip),
                           cuda=SimpleNamespace(is_available=lambda: available, get_device_name=lambda d: "GPU X"),
                           get_num_threads=lambda: 4)


def test_torch_build():
    assert check_torch_build(_torch(), nvidia_present=lambda: False).message.endswith("CPU-only build")
    warn = check_torch_build(_torch(), nvidia_present=lambda: True)
    assert warn.status == WARN and "NVIDIA GPU" in warn.message and "cu1" in warn.fix
    no_gpu = check_torch_build(_torch(cuda="12.4"), nvidia_present=lambda: False)
    assert no_gpu.status == OK and "CUDA 12.4 build" in no_gpu.message and "use the CPU" in no_gpu.message
    assert check_torch_build().status in (OK, WARN)


def test_device(monkeypatch):
    import torch

    import mobilenet_edu.engine as engine

    monkeypatch.setattr(engine, "pick_device", lambda prefer=None: torch.device("cpu"))
    yes = check_device(_torch(), bf16=lambda: True)
    assert yes.status == OK and "cpu, 4 threads" in yes.message and "bfloat16 instructions: yes" in yes.message
    assert "lesson 07" in yes.message and "pointwise" not in yes.message  # no term the learner has not met yet
    no = check_device(_torch(), bf16=lambda: False)
    assert no.status == OK and "bfloat16 instructions: no" in no.message and "float32" in no.message
    monkeypatch.setattr(engine, "pick_device", lambda prefer=None: torch.device("cuda"))
    assert check_device(_torch(cuda="12.4", available=True)).message == "cuda (GPU X)"


def test_cifar10_found_missing_and_unreachable(tmp_path, monkeypatch):
    monkeypatch.delenv("MOBILENET_EDU_DATA", raising=False)
    fake_cifar(tmp_path / "ok")
    found = check_cifar10(tmp_path / "ok", reachable=lambda: pytest.fail("no network probe when found"))
    assert found.status == OK and "cifar-10-batches-py" in found.message
    fake_cifar(tmp_path / "half", empty="test_batch")
    half = check_cifar10(tmp_path / "half", reachable=lambda: True)
    assert half.status == FAIL and "test_batch" in half.message
    download = check_cifar10(tmp_path / "none", reachable=lambda: True)
    assert download.status == WARN and "will download" in download.message and "data install" in download.fix
    offline = check_cifar10(tmp_path / "none", reachable=lambda: False)
    assert offline.status == FAIL and "cannot be reached" in offline.message
    for route in ("MOBILENET_EDU_DATA", "data install", "network"):
        assert route in offline.fix, offline.fix


def test_widgets_front_end(tmp_path):
    ext = tmp_path / "labextensions"
    (ext / "@jupyter-widgets" / "jupyterlab-manager").mkdir(parents=True)
    (ext / "@jupyter-widgets" / "jupyterlab-manager" / "package.json").write_text("{}")
    versions = {"ipywidgets": "8.1.5", "jupyterlab_widgets": "3.0.13"}
    requires = {"ipywidgets": ["jupyterlab_widgets~=3.0.12", "comm>=0.1.3"]}

    def run(v=versions, dirs=(ext,)):
        return check_widgets(version=v.get, requires=requires.get, labextension_dirs=lambda: list(dirs))

    assert run().status == OK
    assert "ipywidgets 8.1.5, jupyterlab_widgets 3.0.13" in run().message  # two packages, each by its own name
    no_ipw = run({"jupyterlab_widgets": "3.0.13"})
    assert no_ipw.status == FAIL and "ipywidgets" in no_ipw.fix
    no_front = run({"ipywidgets": "8.1.5"})
    assert no_front.status == FAIL and "Error displaying widget" in no_front.message
    assert no_front.fix.startswith("python -m pip install 'jupyterlab_widgets~=3.0.12'")
    old = run({"ipywidgets": "8.1.5", "jupyterlab_widgets": "1.1.0"})
    assert old.status == FAIL and "does not fit" in old.message
    unseen = run(dirs=(tmp_path / "elsewhere",))
    assert unseen.status == FAIL and "cannot find its extension" in unseen.message
    assert check_widgets().status == OK  # this venv has the front end (the browser test uses it)


def test_disk_space(tmp_path):
    little = check_disk(tmp_path, free=lambda p: (p, 100 * 2**20))
    assert little.status == FAIL and "need" in little.message and "MOBILENET_EDU_DATA" in little.fix
    assert check_disk(tmp_path, free=lambda p: (p, DISK_FOR_DOWNLOAD + 1)).status == OK
    fake_cifar(tmp_path)  # with the data there, only the runs need room
    assert check_disk(tmp_path, free=lambda p: (p, 300 * 2**20)).status == OK
    fresh = check_disk(tmp_path / "not" / "yet")  # the nearest folder that exists is measured ...
    later = checkup.show(tmp_path / "not" / "yet")  # named as a reader finds it from here
    assert fresh.status == OK and fresh.message.endswith(f"free on the disk where {later} will "
                                                         "go (needs 400 MB for CIFAR-10)"), fresh.message
    assert f"free in {checkup.show(tmp_path)} (" in check_disk(tmp_path).message  # ... and a folder that exists as is


def test_doctor_function_and_exit_status(monkeypatch, capsys):
    report = mobilenet_edu.doctor()
    names = [c.name for c in report.checks]
    for name in ("python", "torch", "torch build", "device", "CIFAR-10", "widgets", "disk"):
        assert name in names, names
    assert repr(report) == str(report)
    monkeypatch.setattr(checkup, "run_checks", lambda: [Check(OK, "a", "fine"), Check(FAIL, "b", "gone", "fix b")])
    assert checkup.main() == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["[OK]   a: fine", "[FAIL] b: gone -> fix: fix b"]
    assert len(err.strip().splitlines()) == 1 and "1 check failed" in err
    monkeypatch.setattr(checkup, "run_checks", lambda: [Check(WARN, "a", "slow", "x")])
    assert checkup.main() == 0


def test_doctor_command_prints_one_line_per_check():
    proc = subprocess.run([sys.executable, "-m", "mobilenet_edu", "doctor"], capture_output=True, text=True,
                          timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert lines and all(ln.startswith(("[OK]   ", "[WARN] ", "[FAIL] ")) for ln in lines), proc.stdout
    failed = any(ln.startswith("[FAIL]") for ln in lines)
    assert proc.returncode == (1 if failed else 0), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == (1 if failed else 0), proc.stderr
