"""`python -m mobilenet_edu data install PATH`: a handed-out CIFAR-10 file, checked by content, installed atomically.

The good archive is made from the CIFAR-10 copy at hand (the official layout, gzip level 1 to keep it quick);
the bad ones are that archive cut in half, random bytes, a folder of wrong batches and a pickle that would run
code. Each bad file gives one line and a non-zero exit and leaves nothing where the lessons look.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from testkit import CIFAR_DIR, assert_one_line_error, needs_cifar

from mobilenet_edu.data import install_cifar10, load_cifar10
from mobilenet_edu.errors import MobileNetError
from mobilenet_edu.settings import data_root

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta", "readme.html"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """cifar-10-python.tar.gz as the official one is laid out (cifar-10-batches-py/...), from the copy at hand."""
    src = CIFAR_DIR / "cifar-10-batches-py"
    path = tmp_path_factory.mktemp("handout") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as t:
        for name in BATCHES:
            if (src / name).is_file():
                t.add(src / name, arcname=f"cifar-10-batches-py/{name}")
    return path


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@needs_cifar
def test_install_the_official_archive_and_the_lessons_find_it(archive, tmp_path, cli, monkeypatch):
    target = tmp_path / "class data"
    proc = cli("data", "install", archive, env={"MOBILENET_EDU_DATA": str(target)})
    assert proc.returncode == 0, proc.stderr
    assert "50,000 images" in proc.stdout and "10,000 images" in proc.stdout
    assert leftovers(target) == ["cifar-10-batches-py"]  # no partial or old folder left beside it
    monkeypatch.setenv("MOBILENET_EDU_DATA", str(target))
    train_x, train_y, test_x, test_y = load_cifar10(data_root(), download=False)  # where the lessons look
    assert train_x.shape == (50000, 3, 32, 32) and test_x.shape == (10000, 3, 32, 32)
    # a bad file afterwards changes nothing: the installed copy stays as it was
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(4096))
    assert_one_line_error(cli("data", "install", junk, env={"MOBILENET_EDU_DATA": str(target)}))
    assert leftovers(target) == ["cifar-10-batches-py"]
    assert sorted(p.name for p in (target / "cifar-10-batches-py").iterdir()) == sorted(BATCHES)


@needs_cifar
def test_truncated_archive_is_one_line_and_leaves_nothing(archive, tmp_path, cli):
    cut = tmp_path / "cifar-10-python.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target = tmp_path / "data"
    proc = cli("data", "install", cut, env={"MOBILENET_EDU_DATA": str(target)})
    assert_one_line_error(proc, "truncated or corrupt")
    assert not target.exists()


@needs_cifar
def test_unpacked_folder_and_a_repacked_zip(tmp_path):
    installed = install_cifar10(CIFAR_DIR / "cifar-10-batches-py", tmp_path / "a", log=lambda *a, **k: None)
    assert installed == tmp_path / "a" / "cifar-10-batches-py"
    repacked = tmp_path / "my copy.zip"  # a teacher's own archive: another top folder, stored uncompressed
    with zipfile.ZipFile(repacked, "w") as z:
        for name in BATCHES[:6]:
            z.write(installed / name, f"CIFAR10 for class/{name}")
    again = install_cifar10(repacked, tmp_path / "b", log=lambda *a, **k: None)
    assert sorted(p.name for p in again.iterdir()) == sorted(BATCHES[:6])


def test_random_bytes_are_one_line(tmp_path, cli):
    junk = tmp_path / "cifar-10-python.tar.gz"
    junk.write_bytes(np.random.default_rng(0).bytes(1 << 20))
    target = tmp_path / "data"
    proc = cli("data", "install", junk, env={"MOBILENET_EDU_DATA": str(target)})
    assert_one_line_error(proc, "neither a CIFAR-10 archive")
    assert not target.exists()
    assert_one_line_error(cli("data", "install", tmp_path / "nothing.tar.gz"), "does not exist")


def _batches(folder: Path, n_train: int, n_test: int, obj=None) -> Path:
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]:
        d = obj if obj is not None else {b"data": np.zeros((n, 3072), np.uint8), b"labels": [0] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    return folder


def test_wrong_content_is_named(tmp_path):
    small = _batches(tmp_path / "tiny" / "cifar-10-batches-py", 50, 10)
    with pytest.raises(MobileNetError, match="has 50 images .* expected 50,000 images"):
        install_cifar10(small.parent, tmp_path / "data", log=lambda *a, **k: None)
    assert leftovers(tmp_path / "data") == []
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as t:  # the other official format
        (tmp_path / "data_batch_1.bin").write_bytes(b"\0" * 3073)
        t.add(tmp_path / "data_batch_1.bin", "cifar-10-batches-bin/data_batch_1.bin")
    with pytest.raises(MobileNetError, match="binary version"):
        install_cifar10(tmp_path / "cifar-10-binary.tar.gz", tmp_path / "data", log=lambda *a, **k: None)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    evil = _batches(tmp_path / "evil", 0, 0, obj={b"data": _Boom(), b"labels": []})
    with pytest.raises(MobileNetError, match="refusing to load"):
        install_cifar10(evil, tmp_path / "data", log=lambda *a, **k: None)
    with pytest.raises(MobileNetError, match="refusing to load"):
        load_cifar10(evil, download=False)
