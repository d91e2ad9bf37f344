"""The command line: real output for good input, one line and exit status 2 for bad input."""

import subprocess
import sys

import pytest

from igm.cli import main, parse_objective_spec


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "igm.cli", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_parse_objective_spec():
    assert parse_objective_spec("smmd") == ("smmd", "smmd", {})
    assert parse_objective_spec("mmd=smmd:grad_weight=0,lam=1.5") == ("mmd", "smmd", {"grad_weight": 0, "lam": 1.5})
    assert parse_objective_spec("lgan:phi=softplus") == ("lgan:phi=softplus", "lgan", {"phi": "softplus"})


def test_dirac_converges_for_smmd(capsys):
    assert main(["dirac", "smmd:grad_weight=1,lam=1", "--steps", "100", "--every", "100"]) == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    theta = float(last.split("θ")[-1].split()[0])
    assert abs(theta) < 0.05, out  # started at θ = 2


def test_objectives_lists_every_objective(capsys):
    assert main(["objectives"]) == 0
    out = capsys.readouterr().out
    for name in ("smmd", "swgan", "gram", "gcmmd", "mmd-gan-gp", "lgan", "sobolev"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), name


@pytest.mark.parametrize(
    "args,message",
    [
        (["dirac", "nosuch"], "unknown objective 'nosuch'; valid names"),
        (["dirac", "smmd:bogus=1"], "unknown hyperparameter 'bogus'"),
        (["dirac", "smmd:measure=xx"], "unknown measure 'xx'"),
        (["dirac", "smmd:lam"], "write key=value"),
        (["dirac", "--steps", "0"], "--steps and --every must be positive"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, message):
    code, out, err = run_cli(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_keyboard_interrupt_outside_training_is_one_line(monkeypatch, capsys):
    """A Ctrl-C that lands before training installs its handlers (while a run is built) or a second
    one that stops it at once: exit 130 with one line, no traceback."""
    import igm.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.delenv("IGM_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_cmd_presets", interrupted)  # build_parser reads it at call time
    assert main(["presets"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "--resume" in err

