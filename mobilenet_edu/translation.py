"""The Chinese edition (zh-CN): one series in two languages, kept together by this module.

``notebooks/zh-CN/NN_name.ipynb`` is built from ``notebooks/NN_name.ipynb`` by ``sync``:

- every code cell (source, outputs, metadata, id) is the English one, byte for byte: the two editions run the
  same code and show the same outputs;
- every markdown cell is the translation kept from the Chinese notebook (matched by cell id), and records in
  its metadata the hash of the English text it translates: ``{"translation": {"of": "<hash>"}}``.

A translation whose recorded hash is not the English cell's hash now is *stale* (the English changed since);
an English cell without a translation is *missing* (its English text stands in, with ``"of": null``).
``apply`` writes translations and records the hash of the English text they were made from.

    python -m mobilenet_edu.translation sync            # rebuild the Chinese notebooks, list stale and missing
    python -m mobilenet_edu.translation sync --check    # write nothing; exit 1 if anything needs work
    python -m mobilenet_edu.translation todo 07_training          # the cells to translate, as JSON
    python -m mobilenet_edu.translation apply 07_training t.json  # {cell id: Chinese text}
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MobileNetError
from .lessons import lessons, notebooks_dir, read_notebook, source

LANG = "zh-CN"
KEY = "translation"  # the markdown cell's metadata key: {"of": hash of the English text, or None}

_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)|<[^>\n]+>|https?://\S+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def text_hash(text: str) -> str:
    """The hash a translation records of the English text it translates (16 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def edition_dir(english: Path | None = None) -> Path:
    return (Path(english) if english is not None else notebooks_dir()) / LANG


def prose(text: str) -> str:
    """``text`` without what is not translated: formulas, code spans and blocks, link targets and URLs."""
    for pattern in (_CODE, _MATH, _LINK_TARGET):
        text = pattern.sub(" ", text)
    return text


def chinese_share(text: str) -> float | None:
    """Chinese characters among the letters of ``text``'s prose (formulas, code and links aside): 1.0 is all
    Chinese. None where the prose has fewer than 10 letters to judge by (a heading of one word, a formula)."""
    p = prose(text)
    cjk, latin = len(_CJK.findall(p)), len(_LATIN.findall(p))
    if cjk + latin < 10:
        return None
    # A Chinese character carries about as much as an English word of 4-5 letters: weigh them so, so that an
    # English term in brackets beside its Chinese name does not outweigh the sentence around it.
    return cjk / (cjk + latin / 4.5)


def chinese_chars(nb: dict) -> int:
    """Chinese characters in a notebook's markdown."""
    return sum(len(_CJK.findall(source(c))) for c in nb.get("cells", []) if c.get("cell_type") == "markdown")


@dataclass
class Report:
    """One Chinese notebook after ``build``: how many markdown cells are translated, and which are not."""

    name: str
    markdown: int = 0
    stale: list[str] = field(default_factory=list)  # cell ids whose English changed since they were translated
    missing: list[str] = field(default_factory=list)  # cell ids with no translation yet
    chinese_chars: int = 0
    changed: bool = False  # the file on disk differs from the rebuilt notebook

    @property
    def translated(self) -> int:
        return self.markdown - len(self.stale) - len(self.missing)

    def line(self) -> str:
        state = "up to date" if not (self.stale or self.missing) else \
            f"{len(self.stale)} stale {self.stale}, {len(self.missing)} missing {self.missing}"
        return f"{self.name}: {self.translated}/{self.markdown} markdown cells, {self.chinese_chars:,} Chinese " \
               f"characters; {state}"


def build(english: dict, chinese: dict | None, name: str = "") -> tuple[dict, Report]:
    """The Chinese notebook rebuilt from ``english``, keeping the translations of ``chinese`` (or None)."""
    kept = {}
    for cell in (chinese or {}).get("cells", []):
        if cell.get("cell_type") == "markdown" and "id" in cell:
            kept[cell["id"]] = cell
    report, cells = Report(name), []
    for cell in english.get("cells", []):
        if cell.get("cell_type") != "markdown":
            cells.append(copy.deepcopy(cell))
            continue
        if "id" not in cell:
            raise MobileNetError(f"{name}: a markdown cell has no id (nbformat 4.5 gives every cell one); open and "
                                 "save the notebook in Jupyter once")
        report.markdown += 1
        old = kept.get(cell["id"])
        recorded = (old or {}).get("metadata", {}).get(KEY, {}).get("of")
        new = copy.deepcopy(cell)
        if old is None or recorded is None:
            report.missing.append(cell["id"])
            new["metadata"] = {**cell.get("metadata", {}), KEY: {"of": None}}
        else:
            if recorded != text_hash(source(cell)):
                report.stale.append(cell["id"])
            new["source"] = copy.deepcopy(old["source"])
            new["metadata"] = {**cell.get("metadata", {}), KEY: {"of": recorded}}
        cells.append(new)
    nb = {**copy.deepcopy(english), "cells": cells}
    report.chinese_chars = chinese_chars(nb)
    return nb, report


def dumps(nb: dict) -> str:
    """A notebook as Jupyter writes it (one-space indent, UTF-8 kept as is, a final newline)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _pair(name: str, english: Path | None = None) -> tuple[Path, Path]:
    stem = Path(name).name.removesuffix(".ipynb")
    en = (Path(english) if english is not None else notebooks_dir()) / f"{stem}.ipynb"
    if not en.is_file():
        raise MobileNetError(f"no English lesson {en.name} in {en.parent}")
    return en, edition_dir(english) / en.name


def sync(english: Path | None = None, write: bool = True) -> list[Report]:
    """Rebuild every Chinese lesson from its English one (``write=False``: only report). A Chinese notebook with no
    English lesson beside it is reported as an error, not deleted (it may hold translations worth keeping)."""
    folder = Path(english) if english is not None else notebooks_dir()
    zh = edition_dir(folder)
    orphans = sorted(p.name for p in zh.glob("*.ipynb") if not (folder / p.name).is_file())
    if orphans:
        raise MobileNetError(f"{zh.name}/ has notebooks with no English lesson: {', '.join(orphans)}; rename or "
                             "remove them by hand")
    reports = []
    for lesson in lessons(folder):
        target = zh / lesson.path.name
        text = target.read_text(encoding="utf-8") if target.is_file() else None
        nb, report = build(read_notebook(lesson.path), json.loads(text) if text else None, lesson.path.name)
        new = dumps(nb)
        report.changed = new != text
        if write and report.changed:
            _write(target, new)
        reports.append(report)
    return reports


def _write(path: Path, text: str) -> None:
    from .files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def todo(name: str, english: Path | None = None) -> dict[str, dict]:
    """The markdown cells of one lesson that need translating: {cell id: {"state", "english", "chinese"}}."""
    en, zh = _pair(name, english)
    nb, report = build(read_notebook(en), read_notebook(zh) if zh.is_file() else None, en.name)
    english_text = {c["id"]: source(c) for c in read_notebook(en)["cells"] if c.get("cell_type") == "markdown"}
    out = {}
    for cell in nb["cells"]:
        cid = cell.get("id")
        if cid in report.missing or cid in report.stale:
            out[cid] = {"state": "missing" if cid in report.missing else "stale", "english": english_text[cid],
                        "chinese": None if cid in report.missing else source(cell)}
    return out


def apply(name: str, translations: dict[str, str], english: Path | None = None) -> Report:
    """Write ``translations`` ({cell id: Chinese markdown}) into the Chinese lesson, each recording the hash of the
    English cell as it is now. Refuses ids that are not markdown cells of the English lesson."""
    en, zh = _pair(name, english)
    en_nb = read_notebook(en)
    english_text = {c["id"]: source(c) for c in en_nb["cells"] if c.get("cell_type") == "markdown"}
    unknown = sorted(set(translations) - set(english_text))
    if unknown:
        raise MobileNetError(f"{en.name} has no markdown cell with id {', '.join(unknown)}")
    nb, _ = build(en_nb, read_notebook(zh) if zh.is_file() else None, en.name)
    for cell in nb["cells"]:
        cid = cell.get("id")
        if cid in translations:
            text = translations[cid]
            if not isinstance(text, str) or not text.strip():
                raise MobileNetError(f"{en.name}: the translation of cell {cid} is empty")
            cell["source"] = text.splitlines(keepends=True)
            cell["metadata"][KEY] = {"of": text_hash(english_text[cid])}
    nb, report = build(en_nb, nb, en.name)
    _write(zh, dumps(nb))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mobilenet_edu.translation",
                                 description="Keep the Chinese (zh-CN) lessons in step with the English ones.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync", help="rebuild notebooks/zh-CN/ from the English lessons; list stale and missing cells")
    s.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is stale, missing or "
                   "differs from a rebuild")
    t = sub.add_parser("todo", help="print the cells of one lesson that need translating, as JSON")
    t.add_argument("lesson")
    a = sub.add_parser("apply", help="write translations from a JSON file {cell id: Chinese markdown}")
    a.add_argument("lesson")
    a.add_argument("file")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "sync":
            reports = sync(write=not args.check)
            for r in reports:
                print(r.line() + (" (rebuilt)" if r.changed and not args.check else ""))
            stale, missing = sum(len(r.stale) for r in reports), sum(len(r.missing) for r in reports)
            print(f"{len(reports)} lessons, {sum(r.chinese_chars for r in reports):,} Chinese characters: "
                  f"{stale} stale, {missing} missing")
            differs = [r.name for r in reports if r.changed]
            if args.check and differs:
                print(f"out of date with the English lessons (run sync): {', '.join(differs)}", file=sys.stderr)
            return 1 if args.check and (stale or missing or differs) else 0
        if args.cmd == "todo":
            print(json.dumps(todo(args.lesson), indent=1, ensure_ascii=False))
            return 0
        try:
            data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise MobileNetError(f"cannot read translations from {args.file}: {e}") from None
        if not isinstance(data, dict):
            raise MobileNetError(f"{args.file} must hold one JSON object {{cell id: Chinese text}}")
        print(apply(args.lesson, data).line())
        return 0
    except MobileNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
