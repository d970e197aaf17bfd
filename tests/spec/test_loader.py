"""Rule files are validated on load, with errors that name the file and the rule."""

import shutil

import pytest

from kmigrate.spec.loader import RuleError, load_ruleset, rules_dir


@pytest.fixture
def rules_copy(tmp_path):
    dest = tmp_path / "rules"
    shutil.copytree(rules_dir(), dest)
    return dest


def _add(rules_copy, text):
    (rules_copy / "zz_extra.toml").write_text(text)


def test_repository_rules_load():
    rs = load_ruleset()
    assert rs.layer_rule("Convolution2D").id == "conv2d"
    assert rs.layer_rule("Deconvolution2D").names["Deconvolution2D"] == "Conv2DTranspose"


@pytest.mark.parametrize("text, message", [
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\nsignature = ["a"]\ntarget_params = ["b"]\n',
     "zz_extra.toml: rule 'x': Keras 1 parameter 'a' has no outcome"),
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\nsignature = ["a"]\nrename = { a = "c" }\n',
     "zz_extra.toml: rule 'x': rename 'a' -> 'c': 'c' is not a target parameter"),
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\nspecial = ["nope"]\n',
     "zz_extra.toml: rule 'x': special 'nope' is not a function"),
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\ncolour = 1\n',
     "zz_extra.toml: rule 'x': unknown keys ['colour']"),
    ('[[rule]]\nid = "conv2d"\nsummary = "s"\nnames = { Foo = "Bar" }\n',
     "rule 'conv2d': duplicate id"),
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Convolution2D = "Conv2D" }\n',
     "spelling 'Convolution2D' is already claimed by rule"),
    ('[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\nvalue_maps = { a = "nope" }\nsignature = ["a"]\n',
     "zz_extra.toml: rule 'x': value map 'nope' for 'a' is not defined"),
    ('[[rule]]\nsummary = "s"\n', "zz_extra.toml: a [[rule]] has no string 'id'"),
    ('[[rule]\n', "zz_extra.toml: not valid TOML"),
    ('[[rule]]\nid = "x"\nnames = { Foo = "Bar" }\n', "zz_extra.toml: rule 'x': missing 'summary'"),
])
def test_bad_rule_files_name_the_file_and_rule(rules_copy, text, message):
    _add(rules_copy, text)
    with pytest.raises(RuleError) as exc:
        load_ruleset(rules_copy)
    assert message in str(exc.value)


def test_cli_reports_a_broken_rule_file_in_one_line(rules_copy, monkeypatch, capsys):
    import kmigrate.spec.loader as loader
    from kmigrate.cli import main

    _add(rules_copy, '[[rule]]\nid = "x"\nsummary = "s"\nnames = { Foo = "Bar" }\ncolour = 1\n')
    monkeypatch.setattr(loader, "rules_dir", lambda: rules_copy)
    loader.default_ruleset.cache_clear()
    try:
        assert main(["rules"]) == 2
    finally:
        loader.default_ruleset.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["kmigrate: error: zz_extra.toml: rule 'x': unknown keys ['colour']"]


def test_the_prefilter_markers_cover_every_keras1_only_spelling():
    """A vendored copy of Keras 1 (no `keras` in the file) still reaches the parser and its report."""
    from kmigrate.spec.loader import MARKERS, default_ruleset

    spellings = default_ruleset().keras1_spellings()
    assert {"Convolution2D", "AtrousConv2D", "Deconv2D", "image_dim_ordering", "ThresholdedReLU"} <= spellings
    for spelling in spellings:
        assert any(m.decode() in spelling for m in MARKERS), spelling
