"""``igm figure diracgan``'s ``methods`` option: per-method hyperparameters, the deprecated per-method
option names, and the errors for bad names and values."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from igm.analysis import figures
from igm.analysis.diracgan import METHODS, DiracFigureOptions, build_objective, field_on_grid
from igm.analysis.diracgan.options import DEPRECATED
from igm.cli import main

# a figure small enough to draw in a second or two
TINY = ["steps=3", "grid=2", "sup_thetas=2", "sup_psis=2", "critic_points=5"]


def _options(**values) -> DiracFigureOptions:
    return figures.build_options("diracgan", overrides=values)


def test_methods_mapping_reaches_the_objectives():
    opts = _options(methods={"smmd": {"rkhs_weight": 2, "grad_weight": 0.5}, "wgan-gp": {"gp_weight": 10}, "mmd": None})
    assert list(opts.methods) == ["smmd", "wgan-gp", "mmd"]  # the panels, in order
    smmd = build_objective("smmd", opts)
    assert (smmd.rkhs_weight, smmd.grad_weight, smmd.diag_weight) == (2, 0.5, 1.0)  # diag_weight: the figure's default
    assert build_objective("wgan-gp", opts).gp_weight == 10
    assert opts.hyperparameters("smmd") == {"rkhs_weight": 2, "grad_weight": 0.5, "diag_weight": 1.0}
    # a list of names: the figure's defaults
    assert build_objective("wgan-gp", _options(methods=["wgan-gp"])).gp_weight == 1.0
    assert _options(methods="smmd").methods == {"smmd": {}}


def test_every_method_takes_its_defaults_back():
    """Writing a method's defaults into ``methods`` builds the same objective as leaving them out."""
    for name, method in METHODS.items():
        given = build_objective(name, _options(methods={name: dict(method.defaults)}))
        default = build_objective(name, _options(methods=[name]))
        assert given.hyperparameters() == default.hyperparameters(), name


@pytest.mark.parametrize("old", sorted(DEPRECATED))
def test_deprecated_option_warns_and_sets_the_hyperparameter(old):
    targets, key = DEPRECATED[old]
    value = 3 if key == "points" else 0.25
    with pytest.warns(DeprecationWarning, match=rf"option {old} is deprecated.*methods=\{{.*{targets[0]}: \{{{key}: "):
        opts = _options(**{old: value})
    for name in targets:
        assert opts.methods[name] == {key: value}
        assert getattr(build_objective(name, opts), key) == value
    assert getattr(opts, old) == value  # the old name reads the value in use


def test_deprecated_option_and_its_new_spelling_give_the_same_field():
    with pytest.warns(DeprecationWarning):
        old = _options(methods=["smmd"], smmd_lam=2.0, smmd_grad_weight=0.5)
    new = _options(methods={"smmd": {"rkhs_weight": 2.0, "grad_weight": 0.5}})
    thetas, psis = np.array([-1.0, 0.5, 2.0]), np.array([0.3, 1.5])
    np.testing.assert_array_equal(field_on_grid("smmd", old, thetas, psis), field_on_grid("smmd", new, thetas, psis))


def test_options_without_deprecated_names_do_not_warn_and_round_trip():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        opts = _options(methods={"gcmmd": {"rkhs_weight": 0.5}, "smmd": None})
        assert opts.gcmmd_lam == 0.5 and opts.smmd_lam == 1.0  # the old names read the values in use
        again = dataclasses.replace(opts, grid=4)
    assert again.methods == opts.methods


def test_quick_mode_keeps_working_with_a_deprecated_option(tmp_path, capsys):
    """--quick sets gcmmd's μ points in ``methods``; the deprecated gcmmd_points still overrides it, and
    the command line prints the deprecation as one line."""
    args = ["figure", "diracgan", "--quick", "--out", str(tmp_path), "methods=[gcmmd]", "gcmmd_points=8", *TINY]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "igm: warning: option gcmmd_points is deprecated; give the hyperparameters in methods instead: " \
           "methods={gcmmd: {points: 8}}" in err
    payload = json.loads((tmp_path / "diracgan.json").read_text())
    assert payload["options"]["methods"] == {"gcmmd": {"rkhs_weight": 1.0, "points": 8}}
    assert payload["options"]["gcmmd_points"] == 8


def test_cli_methods_mapping(tmp_path, capsys):
    args = ["figure", "diracgan", "--out", str(tmp_path), "methods={smmd: {rkhs_weight: 2, grad_weight: 5e-1}, wgan}", *TINY]
    assert main(args) == 0
    assert "warning" not in capsys.readouterr().err
    payload = json.loads((tmp_path / "diracgan.json").read_text())
    assert payload["options"]["methods"] == {"smmd": {"rkhs_weight": 2, "grad_weight": 0.5, "diag_weight": 1.0},
                                             "wgan": {"clip": 1.0}}
    assert list(payload["final"]) == ["smmd", "wgan"]
    assert payload["options"]["smmd_lam"] == 2  # the deprecated names, for old readers of the JSON


@pytest.mark.parametrize(
    "option,message",
    [
        ("methods={nosuch: {}}", "unknown DiracGAN method 'nosuch'; valid: mmd, "),
        ("methods={smmd: {nosuch: 1}}", "unknown hyperparameter 'nosuch' for DiracGAN method 'smmd'; valid: "),
        ("methods={mmd: {rkhs_weight: 1}}", "unknown hyperparameter 'rkhs_weight' for DiracGAN method 'mmd'; valid: (none)"),
        ("methods={smmd: {kernel: rbf}}", "hyperparameter 'kernel' of DiracGAN method 'smmd' is fixed by the figure"),
        ("methods={smmd: {rkhs_weight: -1}}", "DiracGAN method 'smmd': rkhs_weight must be a non-negative finite number"),
        ("methods={smmd: {rkhs_weight: abc}}", "methods: smmd's rkhs_weight must be a number; got 'abc'"),
        ("methods={gcmmd: {points: 1}}", "DiracGAN method 'gcmmd': points must be an integer of at least 2"),
        ("methods={smmd: 3}", "methods: smmd must map to hyperparameters"),
        ("methods=[smmd, {wgan: 1}]", "methods: a list holds method names only"),
        ("methods=[smmd, smmd]", "methods are repeated"),
        ("methods={smmd: {rkhs_weight: 2}", "is not valid YAML"),
    ],
)
def test_bad_methods_are_one_line_errors(tmp_path, capsys, option, message):
    assert main(["figure", "diracgan", "--quick", "--out", str(tmp_path), option]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("igm: error: ")
    assert not (tmp_path / "diracgan.json").exists()


def test_deprecated_names_are_accepted_but_not_listed():
    with pytest.raises(ValueError, match="unknown option 'bogus'") as info:
        figures.parse_overrides(DiracFigureOptions, ["bogus=1"])
    assert "methods" in str(info.value) and "smmd_lam" not in str(info.value)
    assert figures.parse_overrides(DiracFigureOptions, ["smmd_lam=2"]) == {"smmd_lam": 2.0}
