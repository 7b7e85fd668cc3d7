"""The "try your own image" upload widget (notebook 08), without a browser: every odd image a learner might upload
gets its top-5 table, every broken one exactly one readable line that names the file."""

import datetime as dt
import html
import re

import pytest
from test_predict import broken_images, odd_images

from mobilenet_edu.inference import Predictor
from mobilenet_edu.widgets import (
    NO_UPLOAD_HTML,
    UPLOAD_CLASS,
    UPLOAD_RESULTS_CLASS,
    prediction_html,
    upload_widget,
    uploaded_files,
)

TOP_ROW = re.compile(r"<tr class='mnedu-top'><td>([^<]*)</td><td[^>]*>([0-9.]+)%</td>")


@pytest.fixture(scope="module")
def predictor():
    return Predictor("cifar10")


def text_of(fragment: str) -> str:
    """What a reader sees of an HTML fragment: the text without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def as_uploaded(files: dict[str, bytes]) -> tuple[dict, ...]:
    """``files`` in the form ipywidgets 8's FileUpload.value takes: dicts whose content is a memoryview."""
    when = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return tuple({"name": name, "type": "", "size": len(data), "content": memoryview(data), "last_modified": when}
                 for name, data in files.items())


@pytest.mark.parametrize("name", sorted(odd_images()))
def test_any_image_shows_a_thumbnail_and_the_top_5(predictor, name):
    page = prediction_html(name, memoryview(odd_images()[name]), predictor)  # memoryview: as ipywidgets 8 gives it
    rows = TOP_ROW.findall(page)
    assert len(rows) == 5, page[-600:]
    assert all(cls in predictor.classes for cls, _ in rows) and len({cls for cls, _ in rows}) == 5
    probs = [float(p) for _, p in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100.1
    assert "<img src='data:image/png;base64," in page and name in text_of(page)
    assert "mnedu-upload-error" not in page and "Traceback" not in page


@pytest.mark.parametrize("name", sorted(broken_images()))
def test_a_broken_file_is_one_line_that_names_it(predictor, name):
    page = prediction_html(name, broken_images()[name], predictor)
    line = text_of(page)
    assert "\n" not in page and line.count("error:") == 1, page
    assert line.startswith("error: cannot read image") and name in line, line
    assert "Traceback" not in page and "mnedu-top" not in page and " at 0x" not in line  # no memory addresses


def test_top_k_is_honoured(predictor):
    page = prediction_html("photo.jpg", odd_images()["photo.jpg"], predictor, top_k=3)
    assert len(TOP_ROW.findall(page)) == 3


def test_both_forms_of_file_upload_value_are_read():
    data = b"\x89PNG"
    assert uploaded_files(as_uploaded({"a.png": data})) == [("a.png", data)]  # ipywidgets 8
    assert uploaded_files({"a.png": {"content": data, "metadata": {}}}) == [("a.png", data)]  # ipywidgets 7
    assert uploaded_files(()) == []


def test_the_widget_predicts_each_uploaded_file(predictor):
    box = upload_widget(predictor=predictor)
    upload, results = box.children
    assert UPLOAD_CLASS in upload._dom_classes and UPLOAD_RESULTS_CLASS in results._dom_classes
    assert upload.accept == "image/*" and upload.multiple is True
    assert results.value == NO_UPLOAD_HTML
    files = {"gray.png": odd_images()["gray.png"], "notes.txt": broken_images()["notes.txt"],
             "16bit.png": odd_images()["16bit.png"]}
    upload.value = as_uploaded(files)  # what the browser sends when a learner picks three files
    parts = re.findall(r"<div class='mnedu-upload-(?:result|error)'", results.value)
    assert len(parts) == 3, results.value[:300]
    assert len(TOP_ROW.findall(results.value)) == 10  # two good files, five rows each
    errors = re.findall(r"<div class='mnedu-upload-error'[^>]*>([^<]*)</div>", results.value)
    assert len(errors) == 1 and "notes.txt" in errors[0] and "Traceback" not in results.value
    # The order of the upload is kept: gray, then the error, then the 16-bit image.
    positions = [results.value.index(f"<b>{n}</b>") if n.endswith(".png") else results.value.index(n) for n in files]
    assert positions == sorted(positions)


def test_a_shipped_name_or_a_missing_file_for_the_weights():
    from mobilenet_edu import MobileNetError

    with pytest.raises(MobileNetError, match="no such file"):
        upload_widget("runs/none/weights.safetensors")
