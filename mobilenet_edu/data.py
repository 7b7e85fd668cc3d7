"""Data: CIFAR-10 held in memory as uint8 tensors, image folders, synthetic data.

CIFAR-10 and synthetic data never go through PIL on the hot path: the whole set is one uint8 tensor and
each batch is cropped, flipped and normalised with tensor ops (the airbench approach). Augmentation draws
are made per sample *index* at the start of each epoch, so a sample gets the same crop whatever the batch
size or number of processes: 1 process x batch 2b and 2 processes x batch b see identical inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import MobileNetError
from .settings import DATA_VAR, data_root

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TGZ_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Content hashes (sha256 of the uint8 pixel array N x 3072 in batch order, and of the labels as uint8).
# They hold for the official files and for copies whose pickled file names differ.
CIFAR10_SHA256 = {
    "train": ("9d5c2eddadb0deff02c14c350c0385aab7b1d5ff1edfeb4997c8dc8644960111",
              "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253"),
    "test": ("177777c33ba79825320efa646ad04a94bdc3c80e4ebe3bd21724f8cdfd4b9d56",
             "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"),
}
# Training-set channel statistics on the 0-1 scale (R, G, B).
CIFAR10_MEAN = (125.307 / 255, 122.950 / 255, 113.865 / 255)
CIFAR10_STD = (62.993 / 255, 62.089 / 255, 66.705 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


# ----------------------------------------------------------------------------------------------------
# CIFAR-10


def _find_cifar_dir(data_dir: Path) -> Path | None:
    for cand in (data_dir / "cifar-10-batches-py", data_dir):
        if (cand / "data_batch_1").is_file() and (cand / "test_batch").is_file():
            return cand
    return None


def offline_routes(data_dir: str | os.PathLike) -> str:
    """The three ways to CIFAR-10 when it is missing, in one sentence (the lessons, the CLI and the tests say it)."""
    return (f"set {DATA_VAR} to a folder that holds cifar-10-batches-py/, or install a copy you were given with "
            f"'python -m mobilenet_edu data install cifar-10-python.tar.gz', or connect to the network and run "
            f"again (it downloads {CIFAR10_URL}, 170 MB, into {data_dir})")


def find_cifar10(data_dir: str | os.PathLike) -> Path | None:
    """The ``cifar-10-batches-py/`` folder under ``data_dir`` (or ``data_dir`` itself), or None; nothing is read."""
    return _find_cifar_dir(Path(data_dir).expanduser())


def download_reachable(timeout: float = 3.0) -> bool:
    """Whether CIFAR-10's download site answers a TCP connection within ``timeout`` seconds (no data sent)."""
    import socket
    from urllib.parse import urlsplit

    try:
        socket.create_connection((urlsplit(CIFAR10_URL).hostname, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def download_cifar10(data_dir: Path) -> Path:
    """Download and unpack the official archive into ``data_dir`` (torchvision's downloader)."""
    from torchvision.datasets.utils import download_and_extract_archive

    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        download_and_extract_archive(CIFAR10_URL, str(data_dir), md5=CIFAR10_TGZ_MD5)
    except Exception as e:  # network errors come in many types; all mean the same to the user
        if created and not any(data_dir.iterdir()):
            data_dir.rmdir()  # leave no empty folder behind a failed download
        raise MobileNetError(
            f"CIFAR-10 is not in {data_dir} and could not be downloaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no detail'}); {offline_routes(data_dir)}") from None
    found = _find_cifar_dir(data_dir)
    if found is None:
        raise MobileNetError(f"downloaded CIFAR-10 but found no cifar-10-batches-py/ under {data_dir}")
    return found


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and nothing else: numpy arrays and plain data. Any other class is refused, so
    a file handed around on a USB stick cannot run code when it is read."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")
        return super().find_class(module, name)


SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
SPLIT_SIZES = {"train": 50_000, "test": 10_000}


def _read_batches(folder: Path, names: list[str], where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        path = folder / name
        label = f"{where}: {name}" if where else str(path)
        if not path.is_file():
            raise MobileNetError(f"CIFAR-10 file missing: {label}")
        try:
            with open(path, "rb") as f:
                d = _BatchUnpickler(f, encoding="bytes").load()
            xs.append(np.asarray(d[b"data"], dtype=np.uint8))
            ys.append(np.asarray(d[b"labels"], dtype=np.uint8))
        except MobileNetError:
            raise
        except Exception as e:
            raise MobileNetError(f"cannot read CIFAR-10 file {label}: {type(e).__name__}: {e}") from None
    return np.concatenate(xs), np.concatenate(ys)


def _checked_split(folder: Path, split: str, check: bool = True, where: str | None = None):
    """One split's pixels (N, 3072) and labels, checked for shape, label range and (``check``) content hash."""
    x, y = _read_batches(folder, SPLITS[split], where)
    where = where or str(folder)
    n = SPLIT_SIZES[split]
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(y) != len(x):
        raise MobileNetError(f"CIFAR-10 {split} data in {where} has shape {x.shape} with {len(y)} labels; "
                             f"expected ({n}, 3072) pixels (32 x 32 x 3) and as many labels")
    if len(x) != n or (len(y) and int(y.max()) > 9):
        raise MobileNetError(f"CIFAR-10 {split} data in {where} has {len(x):,} images with labels up to "
                             f"{int(y.max()) if len(y) else 'none'}; expected {n:,} images with labels 0-9")
    if check:
        got = (hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(), hashlib.sha256(y.tobytes()).hexdigest())
        if got != CIFAR10_SHA256[split]:
            raise MobileNetError(f"CIFAR-10 {split} data in {where} does not match the official content "
                                 "(hash check failed); delete it and download again")
    return x, y


def ensure_cifar10(data_dir: str | os.PathLike, verbose: bool = False) -> Path:
    """The ``cifar-10-batches-py/`` folder under ``data_dir``, downloaded there first when absent."""
    data_dir = Path(data_dir).expanduser()
    folder = _find_cifar_dir(data_dir)
    if folder is None:
        if verbose:
            print(f"CIFAR-10: not found under {data_dir}; downloading {CIFAR10_URL} (170 MB) there", flush=True)
        folder = download_cifar10(data_dir)
    return folder


def load_cifar10(data_dir: str | os.PathLike, download: bool = True, check: bool = True, verbose: bool = False):
    """CIFAR-10 as ``(train_x, train_y, test_x, test_y)``: uint8 (N, 3, 32, 32) and int64 (N,) tensors.

    Looks for ``cifar-10-batches-py/`` under ``data_dir`` (or ``data_dir`` itself), downloads it when
    absent, and checks the pixels and labels against the known content hashes.
    """
    data_dir = Path(data_dir).expanduser()
    folder = _find_cifar_dir(data_dir)
    if folder is None:
        if not download:
            raise MobileNetError(f"no CIFAR-10 under {data_dir} (expected {data_dir}/cifar-10-batches-py/): "
                                 f"{offline_routes(data_dir)}")
        folder = ensure_cifar10(data_dir, verbose)
    elif verbose:
        print(f"CIFAR-10: reading {folder}", flush=True)
    out = []
    for split in ("train", "test"):
        x, y = _checked_split(folder, split, check)
        out.append(torch.from_numpy(x.reshape(-1, 3, 32, 32).copy()))
        out.append(torch.from_numpy(y.astype(np.int64)))
    return tuple(out)


# ----------------------------------------------------------------------------------------------------
# Installing CIFAR-10 from a file someone handed out

_INSTALL_FILES = (*SPLITS["train"], *SPLITS["test"])
_OPTIONAL_FILES = ("batches.meta", "readme.html")


def _copy_members(source: Path, dest: Path) -> None:
    """Copy the CIFAR-10 batch files out of ``source`` (a folder, a tar archive of any compression, or a zip)
    into ``dest``, by base name, streaming each member (no archive path is ever used as a path here)."""
    import shutil
    import tarfile
    import zipfile

    wanted = set(_INSTALL_FILES + _OPTIONAL_FILES)

    def pick(names: list[str]) -> dict[str, str]:
        """base name -> member; members in the folder that holds test_batch win (an archive may hold copies)."""
        by_base: dict[str, list[str]] = {}
        for n in names:
            base = n.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            if base in wanted:
                by_base.setdefault(base, []).append(n)
        home = sorted(by_base.get("test_batch", [""]), key=len)[0].replace("\\", "/").rpartition("/")[0]
        chosen = {}
        for base, ns in by_base.items():
            same = [n for n in ns if n.replace("\\", "/").rpartition("/")[0] == home]
            chosen[base] = (same or ns)[0]
        missing = [f for f in _INSTALL_FILES if f not in chosen]
        if missing:
            hint = (" (that is the binary version; the lessons use the 'python version', cifar-10-python.tar.gz)"
                    if any(n.endswith(".bin") for n in names) else "")
            raise MobileNetError(f"{source} holds no CIFAR-10 python batches {', '.join(missing)}{hint}")
        return chosen

    if source.is_dir():
        names = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
        for base, rel in pick(names).items():
            shutil.copyfile(source / rel, dest / base)
        return
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            for base, name in pick([i.filename for i in z.infolist() if not i.is_dir()]).items():
                with z.open(name) as src, open(dest / base, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        return
    if tarfile.is_tarfile(source):
        with tarfile.open(source, "r:*") as t:
            members = {m.name: m for m in t.getmembers() if m.isfile()}
            for base, name in pick(list(members)).items():
                src = t.extractfile(members[name])
                with src, open(dest / base, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        return
    raise MobileNetError(f"{source} is neither a CIFAR-10 archive (.tar.gz, .tar, .zip) nor a folder holding "
                         "cifar-10-batches-py/")


def install_cifar10(source: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                    log=print) -> Path:
    """Install CIFAR-10 from a handed-out copy (the official archive, its unpacked folder, or a re-packed archive)
    into ``data_root(data_dir)``, where the lessons look; returns the installed ``cifar-10-batches-py/``.

    The content is checked (60,000 32x32x3 images, labels 0-9, the official pixels and labels by hash) in a
    folder beside the target, which is then renamed into place: a bad or truncated file leaves nothing behind.
    """
    import errno
    import shutil
    import tarfile
    import tempfile
    import zipfile
    import zlib

    source = Path(source).expanduser()
    if not source.exists():
        raise MobileNetError(f"{source} does not exist")
    root = data_root(data_dir)
    final = root / "cifar-10-batches-py"
    if source.is_dir() and source.resolve() in (final.resolve(), root.resolve()):
        raise MobileNetError(f"{source} is where CIFAR-10 is installed already; nothing to install from")
    created = [d for d in (root, *root.parents) if not d.exists()]  # to remove again if nothing gets installed
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".cifar-10-batches-py.partial-", dir=root))
    except OSError as e:
        raise MobileNetError(f"cannot write to {root}: {e.strerror or e}") from None
    old = None
    try:
        log(f"reading {source}", flush=True)
        try:
            _copy_members(source, tmp)
        except MobileNetError:
            raise
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
                raise MobileNetError(f"cannot write to {root}: {e.strerror}") from None
            raise MobileNetError(f"{source} is truncated or corrupt ({type(e).__name__}: {e}); copy it again") from None
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise MobileNetError(f"{source} is truncated or corrupt ({type(e).__name__}: {e}); copy it again") from None
        for split in ("train", "test"):
            x, _ = _checked_split(tmp, split, check=True, where=str(source))
            log(f"  {split}: {len(x):,} images of 32x32x3, labels 0-9, pixels and labels match the official set",
                flush=True)
            del x
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=".cifar-10-batches-py.old-", dir=root))
            os.replace(final, old / "cifar-10-batches-py")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():  # put the previous copy back
            os.replace(old / "cifar-10-batches-py", final)
        for d in created:  # innermost first
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    log(f"installed CIFAR-10 in {final}", flush=True)
    return final


# ----------------------------------------------------------------------------------------------------
# In-memory batches with per-batch tensor augmentation


class TensorBatches:
    """Batches from a uint8 image tensor held in memory (on the training device).

    Training order: a permutation drawn from ``seed + epoch``; each of ``world`` processes takes every
    ``world``-th index of it (disjoint shards that together cover the epoch), in batches of
    ``batch_size``. Augmentation: zero-pad ``pad`` pixels then crop back (random translation), random
    horizontal flip, optional cutout. Yields normalised float batches in channels_last layout.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, mean, std, train: bool,
                 seed: int = 0, rank: int = 0, world: int = 1, pad: int = 4, flip: bool = True,
                 cutout: int = 0, device: torch.device | str = "cpu", channels_last: bool = True,
                 resize: int | None = None):
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError("x must be a uint8 (N, C, H, W) tensor")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.batch_size, self.train, self.seed = int(batch_size), bool(train), int(seed)
        self.rank, self.world = int(rank), int(world)
        self.pad, self.flip, self.cutout = (int(pad), bool(flip), int(cutout)) if train else (0, False, 0)
        self.channels_last = channels_last
        self.resize = resize if resize and resize != x.shape[-1] else None
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.epoch = 0
        self.xp = F.pad(self.x, (self.pad,) * 4) if self.pad else self.x

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> torch.Tensor:
        """This process's sample indices for the current epoch, in order."""
        n = len(self.x)
        if not self.train:
            return torch.arange(self.rank, n, self.world)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(n, generator=g)
        return perm[: n - n % self.world][self.rank:: self.world]

    def __len__(self) -> int:
        n = len(self.indices())
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def _draws(self):
        """Per-sample augmentation draws for this epoch, indexed by sample index (world-size invariant)."""
        n, h, w = self.x.shape[0], self.x.shape[2], self.x.shape[3]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_777_777)
        dy = torch.randint(0, 2 * self.pad + 1, (n,), generator=g)
        dx = torch.randint(0, 2 * self.pad + 1, (n,), generator=g)
        fl = torch.rand(n, generator=g) < 0.5
        cy = torch.randint(0, h, (n,), generator=g)
        cx = torch.randint(0, w, (n,), generator=g)
        return [t.to(self.device) for t in (dy, dx, fl, cy, cx)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.indices().to(self.device)
        draws = self._draws() if self.train else None
        nb = len(self)
        for b in range(nb):
            i = idx[b * self.batch_size:(b + 1) * self.batch_size]
            yield self._make(i, draws), self.y[i]

    def _make(self, i: torch.Tensor, draws) -> torch.Tensor:
        h, w = self.x.shape[2], self.x.shape[3]
        if draws is None:
            xb = self.x[i]
        else:
            dy, dx, fl, cy, cx = (d[i] for d in draws)
            xb = self.xp[i]
            if self.pad:
                rows = (dy[:, None] + torch.arange(h, device=self.device))[:, None, :, None]
                cols = (dx[:, None] + torch.arange(w, device=self.device))[:, None, None, :]
                bi = torch.arange(len(i), device=self.device)[:, None, None, None]
                ci = torch.arange(xb.shape[1], device=self.device)[None, :, None, None]
                xb = xb[bi, ci, rows, cols]
            if self.flip:
                xb = torch.where(fl[:, None, None, None], xb.flip(3), xb)
        xb = (xb.float() - self.mean) / self.std
        if draws is not None and self.cutout:
            r = self.cutout // 2
            ys = torch.arange(h, device=self.device)[None, :, None]
            xs = torch.arange(w, device=self.device)[None, None, :]
            m = ((ys - cy[:, None, None]).abs() <= r) & ((xs - cx[:, None, None]).abs() <= r)
            xb = xb.masked_fill(m[:, None], 0.0)
        if self.resize:  # e.g. a 224-input model evaluated on 32x32 images
            xb = F.interpolate(xb, size=(self.resize, self.resize), mode="bilinear", antialias=False)
        return xb.contiguous(memory_format=torch.channels_last) if self.channels_last else xb


def synthetic(n: int, num_classes: int = 10, size: int = 32, seed: int = 0):
    """Random uint8 images whose mean colour depends on the class, so a model can learn them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    palette = torch.randint(40, 216, (num_classes, 3, 1, 1), generator=g).float()
    noise = torch.randn(n, 3, size, size, generator=g) * 40
    x = (palette[y] + noise).clamp(0, 255).to(torch.uint8)
    return x, y


# ----------------------------------------------------------------------------------------------------
# Image folders (torchvision ImageFolder layout: ROOT/train/<class>/*, ROOT/val/<class>/*)


def pil_to_rgb(img):
    """Any PIL image (RGB, L, LA, RGBA, P, I;16, I, F, CMYK, ...) as 8-bit RGB."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))  # composite transparency onto white
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def open_image(source: str | os.PathLike | bytes, name: str | None = None):
    """Decode an image file (a path, or its bytes as from an upload) as 8-bit RGB.

    Anything that is not a readable image becomes one MobileNetError line: PIL raises many types on
    broken or hostile files (OSError, SyntaxError, ValueError, struct errors, DecompressionBombError for
    images over its pixel limit, ...), and all of them mean the same to the user.
    """
    import io

    from PIL import Image, ImageOps

    if isinstance(source, (bytes, bytearray)):
        label, opener = name or "upload", lambda: io.BytesIO(source)
        if not source:
            raise MobileNetError(f"cannot read image {label}: the file is empty (0 bytes)")
    else:
        p = Path(source)
        label, opener = str(p), lambda: p
        if not p.is_file():
            raise MobileNetError(f"no such image file: {p}")
        if p.stat().st_size == 0:
            raise MobileNetError(f"cannot read image {p}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(opener()) as img:
                img.load()
                # A phone stores a portrait photo as a landscape one plus an EXIF note "turn me": apply it.
                return pil_to_rgb(ImageOps.exif_transpose(img))
    except MemoryError:
        raise MobileNetError(f"cannot read image {label}: not enough memory to decode it") from None
    except Exception as e:  # every decoder failure is the same to the user: not a readable image
        detail = str(e).splitlines()[0] if str(e) else "no detail"
        # PIL names an in-memory file by its object's address ("<_io.BytesIO object at 0x7f...>"): say its name.
        detail = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", repr(label), detail)
        heif = _is_heif(source, label)
        hint = " (HEIC/HEIF photos, as iPhones save them, need converting to JPEG or PNG first)" if heif else ""
        raise MobileNetError(f"cannot read image {label}: {type(e).__name__}: {detail}{hint}") from None


def _is_heif(source, label: str) -> bool:
    """Whether a file is HEIC/HEIF (or AVIF), which Pillow cannot decode without a plug-in."""
    if str(label).lower().endswith((".heic", ".heif", ".avif")):
        return True
    if isinstance(source, (bytes, bytearray)):
        head = bytes(source[:12])
    else:
        try:
            with open(source, "rb") as f:
                head = f.read(12)
        except OSError:
            return False
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1",
                                                   b"avif")


def scan_folder(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Classes (sorted sub-folder names) and (path, class index) pairs of one split folder."""
    if not root.is_dir():
        raise MobileNetError(f"image folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise MobileNetError(f"no class folders in {root} (expected {root}/<class>/<image files>)")
    samples = []
    for ci, c in enumerate(classes):
        files = sorted(p for p in (root / c).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise MobileNetError(f"class folder {root / c} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        samples += [(str(p), ci) for p in files]
    return classes, samples


class FolderDataset(torch.utils.data.Dataset):
    """Decoded lazily with PIL; a file that fails to decode yields None (dropped by ``collate_skip``)."""

    def __init__(self, samples: list[tuple[str, int]], transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            img = open_image(path)
        except MobileNetError:
            return path
        return self.transform(img), label


def collate_skip(batch):
    """Stack the good samples; return the paths of the ones that failed to decode beside them."""
    good = [b for b in batch if not isinstance(b, str)]
    bad = [b for b in batch if isinstance(b, str)]
    if not good:
        return None, None, bad
    return torch.stack([g[0] for g in good]), torch.tensor([g[1] for g in good]), bad


def folder_transforms(size: int, train: bool, mean, std):
    from torchvision import transforms as T

    if train:
        tf = [T.RandomResizedCrop(size, scale=(0.25 if size <= 64 else 0.08, 1.0), antialias=True),
              T.RandomHorizontalFlip()]
    else:
        tf = [T.Resize(int(round(size / 0.875)), antialias=True), T.CenterCrop(size)]
    return T.Compose(tf + [T.ToTensor(), T.Normalize(mean, std)])


class FolderBatches:
    """DataLoader over a FolderDataset that counts skipped (corrupt) files and shards across processes."""

    def __init__(self, dataset: FolderDataset, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
                 world: int = 1, workers: int = 0, device="cpu", channels_last: bool = True):
        from torch.utils.data import DataLoader, DistributedSampler

        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=train, seed=seed,
                                          drop_last=False)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, num_workers=workers,
                                 collate_fn=collate_skip, drop_last=train and len(dataset) >= batch_size * world,
                                 persistent_workers=workers > 0)
        self.device, self.channels_last = torch.device(device), channels_last
        self.skipped: set[str] = set()
        self.train = train

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y, bad in self.loader:
            self.skipped.update(bad)
            if x is None or (self.train and len(x) < 2):
                continue  # BatchNorm cannot train on a batch of one
            x = x.to(self.device)
            yield (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), y.to(self.device)


# ----------------------------------------------------------------------------------------------------
# One entry point


@dataclass
class Data:
    """Everything the engine needs to know about a data set."""

    name: str
    train: object
    test: object
    classes: list[str]
    mean: tuple
    std: tuple
    input_size: int
    info: dict = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return len(getattr(self.train, "skipped", ())) + len(getattr(self.test, "skipped", ()))


def build_data(data: str, data_dir: str | None = None, batch_size: int = 256, eval_batch_size: int = 500,
               small_input: bool = True, resolution: int = 224, val_split: int = 0, seed: int = 0,
               rank: int = 0, world: int = 1, device="cpu", workers: int = 0, cutout: int = 0,
               synthetic_size: int = 512, num_classes: int = 10, mean=None, std=None,
               input_size: int | None = None, subset: int | None = None, verbose: bool = False) -> Data:
    """Build train/test batch iterators for ``data``: "cifar10", "synthetic" or an image-folder path.

    ``val_split > 0`` holds that many training images out (a fixed random choice) and uses them as the
    "test" split, so recipe choices are made without touching the test set. ``mean``, ``std`` and
    ``input_size`` override the data set's own (evaluation uses the weights' card). ``subset`` keeps only
    that many training images and a fifth as many evaluation images (at least 100): quick runs.
    """
    if data == "cifar10":
        root = data_root(data_dir)
        trx, try_, tex, tey = load_cifar10(root, verbose=verbose and rank == 0)
        classes, mean_, std_, size = list(CIFAR10_CLASSES), CIFAR10_MEAN, CIFAR10_STD, 32
        name = "cifar10"
    elif data == "synthetic":
        size = 32 if small_input else resolution
        trx, try_ = synthetic(synthetic_size, num_classes, size, seed=1234)
        tex, tey = synthetic(max(64, synthetic_size // 4), num_classes, size, seed=4321)
        classes = [f"class{i}" for i in range(num_classes)]
        mean_, std_, name = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "synthetic"
    else:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise MobileNetError(f"--data {data!r}: not 'cifar10', 'synthetic' or an existing folder")
        if not (root / "train").is_dir():
            raise MobileNetError(f"image folder {root} has no train/ sub-folder (expected {root}/train/<class>/*)")
        val_root = root / "val" if (root / "val").is_dir() else None
        classes, tr = scan_folder(root / "train")
        size = input_size or (32 if small_input else resolution)
        mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
        if val_root is not None:
            vclasses, te = scan_folder(val_root)
            if vclasses != classes:
                raise MobileNetError(f"{val_root} classes {vclasses} differ from {root / 'train'} classes {classes}")
        else:
            te = []
        if val_split or not te:
            g = np.random.default_rng(seed)
            k = val_split or max(1, len(tr) // 10)
            order = g.permutation(len(tr))
            te = [tr[i] for i in order[:k]]
            tr = [tr[i] for i in order[k:]]
        if subset:
            tr, te = tr[:subset], te[: max(100, subset // 5)]
        mk = lambda s, t: FolderBatches(FolderDataset(s, folder_transforms(size, t, mean, std)),  # noqa: E731
                                        batch_size if t else eval_batch_size, t, seed, rank, world, workers,
                                        device)
        return Data(str(root), mk(tr, True), mk(te, False), classes, mean, std, size,
                    {"train_images": len(tr), "test_images": len(te), "kind": "folder"})
    mean, std = mean or mean_, std or std_
    if val_split:
        g = torch.Generator().manual_seed(10_007)
        perm = torch.randperm(len(trx), generator=g)
        tex, tey = trx[perm[:val_split]], try_[perm[:val_split]]
        trx, try_ = trx[perm[val_split:]], try_[perm[val_split:]]
    if subset:
        trx, try_, tex, tey = trx[:subset], try_[:subset], tex[: max(100, subset // 5)], tey[: max(100, subset // 5)]
    train = TensorBatches(trx, try_, batch_size, mean, std, True, seed, rank, world, cutout=cutout, device=device,
                          resize=input_size)
    test = TensorBatches(tex, tey, eval_batch_size, mean, std, False, seed, rank, world, device=device,
                         resize=input_size)
    size = input_size or size
    return Data(name, train, test, classes, mean, std, size,
                {"train_images": len(trx), "test_images": len(tex), "kind": "tensor",
                 "split": "validation" if val_split else "test"})


def image_tensor(img, input_size: int, mean, std, crop_pct: float = 0.875) -> torch.Tensor:
    """One PIL image -> a normalised (1, 3, S, S) tensor, as the model's card says.

    32x32 models see the whole image resized (CIFAR images are whole objects); larger models get the
    usual resize-shorter-side then centre crop of ``crop_pct``.
    """
    from torchvision.transforms import functional as TF

    if input_size <= 64:
        img = TF.resize(img, [input_size, input_size], antialias=True)
    else:
        img = TF.center_crop(TF.resize(img, int(round(input_size / crop_pct)), antialias=True), input_size)
    return TF.normalize(TF.to_tensor(img), mean, std)[None]
