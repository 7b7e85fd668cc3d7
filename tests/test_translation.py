"""The Chinese edition (notebooks/zh-CN/) is the English series in a second language, and says when they part."""

import json
import re
import shutil
from pathlib import Path

import pytest

from mobilenet_edu import translation
from mobilenet_edu.errors import MobileNetError
from mobilenet_edu.lessons import lessons, notebooks_dir, read_notebook, source
from mobilenet_edu.translation import KEY, chinese_share, sync, text_hash

EN = notebooks_dir()
ZH = EN / translation.LANG
PAIRS = [(lesson.path, ZH / lesson.path.name) for lesson in lessons(EN)]
IDS = [en.stem for en, _ in PAIRS]


@pytest.mark.parametrize("en,zh", PAIRS, ids=IDS)
def test_every_lesson_has_a_chinese_edition_with_the_same_code_and_outputs(en, zh):
    assert zh.is_file(), f"no Chinese edition of {en.name}: run python -m mobilenet_edu.translation sync"
    a, b = read_notebook(en), read_notebook(zh)
    assert [c["cell_type"] for c in a["cells"]] == [c["cell_type"] for c in b["cells"]]
    assert [c.get("id") for c in a["cells"]] == [c.get("id") for c in b["cells"]]
    for x, y in zip(a["cells"], b["cells"]):
        if x["cell_type"] != "markdown":  # code: source, outputs, metadata, execution count, all identical
            assert x == y, f"{zh.name} cell {x.get('id')}: differs from the English lesson's code cell"
    assert {k: v for k, v in a.items() if k != "cells"} == {k: v for k, v in b.items() if k != "cells"}


@pytest.mark.parametrize("en,zh", PAIRS, ids=IDS)
def test_every_english_cell_has_an_up_to_date_translation(en, zh):
    english = {c["id"]: source(c) for c in read_notebook(en)["cells"] if c["cell_type"] == "markdown"}
    chinese = {c["id"]: c for c in read_notebook(zh)["cells"] if c["cell_type"] == "markdown"}
    missing = [i for i in english if chinese[i]["metadata"].get(KEY, {}).get("of") is None]
    stale = [i for i in english if i not in missing and chinese[i]["metadata"][KEY]["of"] != text_hash(english[i])]
    assert not missing and not stale, (f"{zh.name}: {len(missing)} cells not translated {missing}, {len(stale)} "
                                       f"whose English changed since {stale} (python -m mobilenet_edu.translation "
                                       f"todo {en.stem})")


@pytest.mark.parametrize("en,zh", PAIRS, ids=IDS)
def test_the_prose_of_every_chinese_cell_is_chinese(en, zh):
    low = []
    for cell in read_notebook(zh)["cells"]:
        if cell["cell_type"] == "markdown":
            share = chinese_share(source(cell))
            if share is not None and share < 0.6:
                low.append((cell["id"], round(share, 2)))
    assert not low, f"{zh.name}: cells whose prose is not mostly Chinese: {low}"


@pytest.mark.parametrize("en,zh", PAIRS, ids=IDS)
def test_formulas_and_links_of_the_translation_are_the_englishs(en, zh):
    """A translation keeps every formula; its links lead where the English ones do (one folder deeper)."""
    english = {c["id"]: source(c) for c in read_notebook(en)["cells"] if c["cell_type"] == "markdown"}
    for cell in read_notebook(zh)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        maths = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
        missing = set(maths.findall(english[cell["id"]])) - set(maths.findall(source(cell)))
        assert not missing, f"{zh.name} cell {cell['id']}: formulas not in the translation: {sorted(missing)}"
        for target in re.findall(r"\]\(([^)#\s]+)", source(cell)):
            if not re.match(r"https?://", target):
                assert (zh.parent / target).exists(), f"{zh.name} cell {cell['id']}: link to a missing {target}"


# Terms the glossary fixes, and names for them that a translator might reach for instead.
OTHER_NAMES = {"逐点卷积": r"(?<!逐)点卷积|点态卷积", "宽度乘子": r"宽度因子|宽度乘数|宽度系数",
               "批归一化": r"批量规范化|批标准化|批量标准化", "步幅": r"步长", "乘加运算": r"乘积累加"}


def test_the_glossarys_terms_are_used_and_not_their_other_names():
    text = (ZH / "GLOSSARY.md").read_text(encoding="utf-8")
    for en, zh in (("depthwise convolution", "深度卷积"), ("pointwise convolution", "逐点卷积"),
                   ("width multiplier", "宽度乘子"), ("BatchNorm", "批归一化"), ("stride", "步幅")):
        assert re.search(rf"\| {en}[^|]*\| {zh}", text), (en, zh)
    for _, zh in PAIRS:
        prose = "".join(source(c) for c in read_notebook(zh)["cells"] if c["cell_type"] == "markdown")
        for term, others in OTHER_NAMES.items():
            found = re.findall(others, prose)
            assert not found, f"{zh.name}: {sorted(set(found))} where the glossary says {term}"


def test_sync_check_passes_on_the_committed_series():
    reports = sync(write=False)
    assert [r.name for r in reports] == [en.name for en, _ in PAIRS]
    assert all(not r.changed and not r.stale and not r.missing for r in reports), [r.line() for r in reports]


def _copy_series(tmp_path: Path, names=("01_convolution_cost.ipynb", "02_depthwise_groups.ipynb")) -> Path:
    en = tmp_path / "notebooks"
    (en / translation.LANG).mkdir(parents=True)
    for name in names:
        shutil.copy(EN / name, en / name)
        shutil.copy(ZH / name, en / translation.LANG / name)
    return en


def _edit_one_sentence(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown" and ". " in source(c))
    cell["source"] = source(cell).replace(". ", ". And one sentence more. ", 1)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return cell["id"]


def test_an_edited_english_sentence_makes_its_translation_stale(tmp_path):
    en = _copy_series(tmp_path)
    assert all(not r.stale and not r.missing for r in sync(en, write=False))
    cid = _edit_one_sentence(en / "02_depthwise_groups.ipynb")
    reports = {r.name: r for r in sync(en, write=True)}
    assert reports["02_depthwise_groups.ipynb"].stale == [cid] and not reports["01_convolution_cost.ipynb"].stale
    # the test above, run on this copy, fails and names the cell
    with pytest.raises(AssertionError, match=cid):
        test_every_english_cell_has_an_up_to_date_translation(en / "02_depthwise_groups.ipynb",
                                                              en / translation.LANG / "02_depthwise_groups.ipynb")
    # the translation was kept (stale, not thrown away), and re-translating it clears the state
    todo = translation.todo("02_depthwise_groups", en)
    assert list(todo) == [cid] and todo[cid]["state"] == "stale" and todo[cid]["chinese"]
    report = translation.apply("02_depthwise_groups", {cid: todo[cid]["chinese"] + "还有一句。"}, en)
    assert not report.stale and not report.missing


def test_an_edited_code_cell_is_copied_by_sync(tmp_path):
    en = _copy_series(tmp_path)
    nb = read_notebook(en / "01_convolution_cost.ipynb")
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = source(code) + "\nx = 1"
    (en / "01_convolution_cost.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    with pytest.raises(AssertionError):
        test_every_lesson_has_a_chinese_edition_with_the_same_code_and_outputs(
            en / "01_convolution_cost.ipynb", en / translation.LANG / "01_convolution_cost.ipynb")
    report = next(r for r in sync(en, write=True) if r.name == "01_convolution_cost.ipynb")
    assert report.changed and not report.stale
    test_every_lesson_has_a_chinese_edition_with_the_same_code_and_outputs(
        en / "01_convolution_cost.ipynb", en / translation.LANG / "01_convolution_cost.ipynb")


def test_a_new_english_cell_is_missing_and_an_orphan_is_refused(tmp_path):
    en = _copy_series(tmp_path)
    nb = read_notebook(en / "02_depthwise_groups.ipynb")
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "new-cell", "metadata": {}, "source": ["A new idea."]})
    (en / "02_depthwise_groups.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    report = next(r for r in sync(en, write=True) if r.name == "02_depthwise_groups.ipynb")
    assert report.missing == ["new-cell"]
    with pytest.raises(MobileNetError, match="no markdown cell with id nope"):
        translation.apply("02_depthwise_groups", {"nope": "中文"}, en)
    (en / "02_depthwise_groups.ipynb").rename(en / "02_renamed.ipynb")
    with pytest.raises(MobileNetError, match="no English lesson: 02_depthwise_groups.ipynb"):
        sync(en, write=False)


def test_chinese_share_leaves_formulas_code_and_links_aside():
    assert chinese_share("深度卷积（depthwise convolution）对每个输入通道只用一个卷积核，不混合通道。") > 0.6
    assert chinese_share("A depthwise convolution applies one filter to each input channel.") == 0
    formula = "$D_K \\cdot D_K \\cdot M \\cdot D_F \\cdot D_F$"
    assert chinese_share(f"每层的代价是 {formula}，见下面的函数 `conv_macs(layer)` 的计算结果。") == 1
    assert chinese_share("## 练习") is None  # too little to judge


def test_cli_sync_check_and_bad_input(capsys, tmp_path):
    assert translation.main(["sync", "--check"]) == 0
    assert "0 stale, 0 missing" in capsys.readouterr().out
    bad = tmp_path / "t.json"
    bad.write_text("[1, 2]")
    assert translation.main(["apply", "02_depthwise_groups", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert translation.main(["todo", "99_nothing"]) == 2


def test_tests_take_their_helpers_from_testkit_not_conftest():
    """``from conftest import ...`` finds whichever conftest.py pytest imported last: tests/conftest.py or
    notebooks/conftest.py (or, once, notebooks/zh-CN/conftest.py, which failed CI), depending on the order of the
    paths on the command line. The tests' helpers live in tests/testkit.py."""
    root = EN.parent
    found = sorted(str(p.relative_to(root)) for p in (root / "tests").glob("*.py")
                   if re.search(r"^\s*from conftest import", p.read_text(encoding="utf-8"), re.M))
    assert found == [], found
