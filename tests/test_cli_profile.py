import json

from testkit import assert_one_line_error


def test_profile_json(cli):
    r = cli("profile", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"] == 4_231_976 and round(d["macs"] / 1e6, 1) == 568.7
    assert set(d["by_type"]) == {"conv", "depthwise", "pointwise", "fc"}
    assert all(set(v) == {"params", "macs"} for v in d["by_type"].values())


def test_profile_table(cli):
    r = cli("profile", "--width", "0.5", "--resolution", "160")
    assert r.returncode == 0, r.stderr
    assert "pointwise" in r.stdout and "76.5 M" in r.stdout


def test_profile_bad_input(cli):
    assert_one_line_error(cli("profile", "--width", "0"), "width")
    assert_one_line_error(cli("profile", "--width", "-0.5"), "width")
    assert_one_line_error(cli("profile", "--resolution", "31"), "32")
    assert_one_line_error(cli("profile", "--frobnicate"), "unrecognized arguments")
    assert_one_line_error(cli("profile", "--in-chans", "0"), "in_chans")
    assert_one_line_error(cli("frobnicate"), "invalid choice")
