"""`python -m mobilenet_edu doctor` and `mobilenet_edu.doctor()`: does this machine run the lessons?

One line per check, ``[OK]``, ``[WARN]`` or ``[FAIL]``, with the fix in the same line, so that a learner can act
on it and a teacher can ask for it in a bug report. A FAIL means a lesson will stop; a WARN means it will run
but slower or without something (a download, the widgets). Each check is a small function of what it reads,
so the tests can hand it a missing package, no data or a full disk without breaking the machine.

(The module is ``checkup``, not ``doctor``: ``mobilenet_edu.doctor`` is the function, and a submodule of the same
name would shadow it or be shadowed by it.)
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "OK", "WARN", "FAIL"
# Free space needed where CIFAR-10 goes: the 170 MB archive and the 180 MB unpacked batches, with a margin;
# once the data is there, the lessons' runs and exports still write some 100 MB.
DISK_FOR_DOWNLOAD = 400 * 2**20
DISK_FOR_RUNS = 200 * 2**20
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"


@dataclass(frozen=True)
class Check:
    status: str  # OK, WARN or FAIL
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"[{self.status}]{' ' * (5 - len(self.status))}{self.name}: {self.message}{fix}"


class Report:
    """The checks' results; shows as its lines (in a notebook too); ``ok`` is False when any check failed."""

    def __init__(self, checks: list[Check]):
        self.checks = checks

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def __str__(self) -> str:
        return "\n".join(c.line() for c in self.checks)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def show(path: Path | str) -> str:
    """A path as a reader finds it: relative when it is here or one level up (a lesson in notebooks/ sees
    ../data), ~/... under the home folder, else absolute."""
    path = Path(path).absolute()
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = str(path)
    if not rel.startswith(os.pardir + os.sep + os.pardir) and not os.path.isabs(rel):
        return rel
    home = Path.home()
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------
# The checks


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_python(version: tuple[int, ...] | None = None, requires: str | None = None) -> Check:
    """Python against the package's ``requires-python``."""
    from packaging.specifiers import SpecifierSet

    version = version or tuple(sys.version_info[:3])
    if requires is None:
        requires = (metadata.metadata("mobilenet-edu").get("Requires-Python") if _version("mobilenet-edu")
                    else None) or ">=3.10"
    v = ".".join(map(str, version))
    if SpecifierSet(requires).contains(v, prereleases=True):
        return Check(OK, "python", f"{v} ({requires})")
    return Check(FAIL, "python", f"{v}, the lessons need {requires}",
                 f"install Python {requires.lstrip('>=~')} or newer and make the venv again with it")


def requirements(path: Path | None = None) -> list[str]:
    """The requirement lines the lessons need: ``requirements.txt`` of the checkout, else the package's metadata."""
    from .lessons import repo_root

    root = repo_root()
    path = path or (root / "requirements.txt" if root else None)
    if path is not None and path.is_file():
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
        return [ln for ln in lines if ln and not ln.startswith("-")]
    reqs = metadata.requires("mobilenet-edu") or []
    return [r for r in reqs if "extra ==" not in r]


def check_requirement(line: str, version: Callable[[str], str | None] = _version) -> Check | None:
    """One requirement against what is installed (None: its marker excludes this platform)."""
    from packaging.requirements import Requirement

    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
        return None
    # as written in the file ('>=2.5,<3'), not packaging's sorted form
    spec = re.sub(r"^\s*[A-Za-z0-9._-]+\s*(\[[^\]]*\])?", "", line.split(";")[0]).strip() or str(req.specifier)
    fix = f"python -m pip install '{req.name}{spec}'"
    got = version(req.name)
    if got is None:
        return Check(FAIL, req.name, f"not installed (need {spec or 'any version'})", fix)
    if req.specifier and not req.specifier.contains(got, prereleases=True):
        return Check(FAIL, req.name, f"{got} installed, need {spec}", fix.replace("install", "install -U"))
    return Check(OK, req.name, f"{got}" + (f" ({spec})" if spec else ""))


def _nvidia_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def check_torch_build(torch=None, nvidia_present: Callable[[], bool] = _nvidia_present) -> Check:
    """Which torch build this is (CPU-only, CUDA x.y, ROCm) and whether it can use the GPU the machine has."""
    if torch is None:
        import torch
    cuda, hip = torch.version.cuda, getattr(torch.version, "hip", None)
    build = f"CUDA {cuda} build" if cuda else f"ROCm {hip} build" if hip else "CPU-only build"
    msg = f"torch {torch.__version__}, {build}"
    if not cuda and not hip and nvidia_present():
        return Check(WARN, "torch build", msg + " on a machine with an NVIDIA GPU: the lessons will not use it",
                     "reinstall torch with CUDA (pip install torch --index-url "
                     "https://download.pytorch.org/whl/cu126), see pytorch.org")
    if cuda and not torch.cuda.is_available():
        return Check(OK, "torch build", msg + " (no usable GPU here: the lessons use the CPU)")
    return Check(OK, "torch build", msg)


def check_device(torch=None, bf16: Callable[[], bool] | None = None) -> Check:
    """The device the lessons will use (the engine's own choice), and on a CPU whether it has bf16 instructions."""
    if torch is None:
        import torch
    from .engine import cpu_has_bf16, pick_device

    device = pick_device()
    if device.type == "cuda":
        return Check(OK, "device", f"cuda ({torch.cuda.get_device_name(device)})")
    if device.type == "mps":
        return Check(OK, "device", "mps (Apple GPU)")
    has = (bf16 or cpu_has_bf16)()
    threads = torch.get_num_threads()
    if has:
        return Check(OK, "device", f"cpu, {threads} threads, bfloat16 instructions: yes (lesson 07 uses them to "
                     "train faster)")
    # Not a WARN: nothing to fix, and most laptops lack these instructions; the lessons run all the same.
    return Check(OK, "device", f"cpu, {threads} threads, bfloat16 instructions: no (lesson 07 trains in float32 "
                 "instead, about 1.1x longer)")


def check_cifar10(root: Path | None = None, reachable: Callable[[], bool] | None = None) -> Check:
    """Where CIFAR-10 is; if it is missing, how to get it (three routes), and whether a download would work."""
    from .data import CIFAR10_URL, download_reachable, find_cifar10, offline_routes
    from .settings import DATA_VAR, data_root

    root = root if root is not None else data_root()
    folder = find_cifar10(root)
    if folder is not None:
        missing = [n for n in (*[f"data_batch_{i}" for i in range(1, 6)], "test_batch")
                   if not (folder / n).is_file() or (folder / n).stat().st_size == 0]
        if missing:
            return Check(FAIL, "CIFAR-10", f"{show(folder)} lacks {', '.join(missing)}",
                         "delete that folder, then " + offline_routes(show(root)))
        via = f" (from ${DATA_VAR})" if os.environ.get(DATA_VAR, "").strip() else ""
        return Check(OK, "CIFAR-10", f"found in {show(folder)}{via}; its content is checked when a lesson loads it")
    if (reachable or download_reachable)():
        return Check(WARN, "CIFAR-10", f"not in {show(root)}; lesson 06 will download it ({CIFAR10_URL}, 170 MB)",
                     "nothing to do, or save the download: " + offline_routes(show(root)).split(", or connect")[0])
    return Check(FAIL, "CIFAR-10", f"not in {show(root)}, and its download site cannot be reached",
                 offline_routes(show(root)))


def _labextension_dirs() -> list[Path]:
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return []
    return [Path(p) for p in jupyter_path("labextensions")]


def check_widgets(version: Callable[[str], str | None] = _version,
                  requires: Callable[[str], list[str] | None] | None = None,
                  labextension_dirs: Callable[[], list[Path]] = _labextension_dirs) -> Check:
    """The widgets' front end for JupyterLab: the labextension is installed and fits the ipywidgets installed."""
    from packaging.requirements import Requirement

    requires = requires or metadata.requires
    ipw = version("ipywidgets")
    if ipw is None:
        return Check(FAIL, "widgets", "ipywidgets is not installed: the lessons' sliders will not show",
                     "python -m pip install 'ipywidgets>=8,<9'")
    need = next((Requirement(r) for r in (requires("ipywidgets") or [])
                 if Requirement(r).name.replace("-", "_").lower() == "jupyterlab_widgets"), None)
    spec = str(need.specifier) if need else ""
    fix = f"python -m pip install 'jupyterlab_widgets{spec}', then restart JupyterLab"
    front = version("jupyterlab_widgets")
    if front is None:
        return Check(FAIL, "widgets", f"ipywidgets {ipw} but no JupyterLab front end (jupyterlab_widgets): "
                     "sliders show as 'Error displaying widget'", fix)
    if need and need.specifier and not need.specifier.contains(front, prereleases=True):
        return Check(FAIL, "widgets", f"jupyterlab_widgets {front} does not fit ipywidgets {ipw} (needs {spec})", fix)
    dirs = [d for d in labextension_dirs() if (d / WIDGET_MANAGER / "package.json").is_file()]
    if not dirs:
        return Check(FAIL, "widgets", f"jupyterlab_widgets {front} is installed but JupyterLab cannot find its "
                     f"extension {WIDGET_MANAGER}", "python -m pip install --force-reinstall "
                     f"'jupyterlab_widgets{spec}' in the environment JupyterLab runs from")
    return Check(OK, "widgets", f"ipywidgets {ipw}, jupyterlab_widgets {front} (their JupyterLab front end)")


def _free_bytes(path: Path) -> tuple[Path, int]:
    """Free bytes on the disk that ``path`` is (or would be) on: the nearest folder that exists."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p, shutil.disk_usage(p).free


def check_disk(root: Path | None = None, free: Callable[[Path], tuple[Path, int]] = _free_bytes) -> Check:
    """Free disk space where CIFAR-10 goes: enough for the download when it is missing, for runs when it is there."""
    from .data import find_cifar10
    from .settings import data_root

    root = root if root is not None else data_root()
    where, avail = free(root)
    need, what = (DISK_FOR_RUNS, "the lessons' runs") if find_cifar10(root) else (DISK_FOR_DOWNLOAD, "CIFAR-10")
    # the folder the lessons use, also before it exists (then its disk is measured at the nearest folder that does)
    gib, folder = f"{avail / 2**30:.1f} GiB", show(root)
    msg = f"{gib} free in {folder}" if where == root.absolute() else f"{gib} free on the disk where {folder} will go"
    if avail < need:
        return Check(FAIL, "disk", f"{msg}; {what} need{'s' if what == 'CIFAR-10' else ''} {need // 2**20} MB",
                     f"free at least {(need - avail) // 2**20 + 1} MB there, or set MOBILENET_EDU_DATA to a "
                     "folder on a disk with room")
    return Check(OK, "disk", f"{msg} (needs {need // 2**20} MB for {what})")


def run_checks() -> list[Check]:
    """Every check, in the order a learner meets the problems."""
    checks = [check_python()]
    for line in requirements():
        c = check_requirement(line)
        if c is not None:
            checks.append(c)
    try:
        import torch  # noqa: F401
    except ImportError:
        pass  # the requirement line already says FAIL with its fix
    else:
        checks += [check_torch_build(), check_device()]
    checks += [check_cifar10(), check_widgets(), check_disk()]
    return checks


def doctor() -> Report:
    """Check this machine for the lessons; in a notebook the result shows as one line per check."""
    return Report(run_checks())


def main() -> int:
    """The CLI verb: the lines on stdout; any FAIL gives one line on stderr and exit status 1."""
    report = doctor()
    print(report, flush=True)
    fails = sum(c.status == FAIL for c in report.checks)
    if fails:
        print(f"mobilenet-edu doctor: {fails} check{'s' if fails > 1 else ''} failed: apply the fix on each [FAIL] "
              "line, then run 'python -m mobilenet_edu doctor' again", file=sys.stderr)
        return 1
    return 0
