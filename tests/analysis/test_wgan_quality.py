"""``igm figure wgan-loss-tracks-quality`` (seed 001, figures 3, 4 and 8): the run configurations,
the loss extraction and window means by hand, and the quick run's correlations against a
brute-force Spearman computation from the runs' own logs."""

from __future__ import annotations

import json
import math

import pytest
from torch import nn

from igm.analysis import figures
from igm.analysis.mnist_figures import spearman
from igm.analysis.wgan_quality import WganQualityOptions, _config, _rho, loss_series, window_means
from igm.cli import main
from igm.train import build_run

pytest.importorskip("mlxtend")


def _ranks(xs: list[float]) -> list[float]:
    """Average ranks (1-based), ties sharing the mean of their positions: by brute force."""
    return [sum(1.0 for y in xs if y < x) + (sum(1.0 for y in xs if y == x) + 1) / 2 for x in xs]


def _brute_spearman(a: list[float], b: list[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def test_spearman_on_hand_cases():
    # one swapped pair of four: 1 − 6 Σd² / (n(n² − 1)) = 1 − 6·2/60 = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert _brute_spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    tied = ([1.0, 2.0, 2.0, 5.0, 3.0], [0.3, 0.1, 0.4, 0.9, 0.2])
    assert _ranks(tied[0]) == [1.0, 2.5, 2.5, 5.0, 4.0]
    assert spearman(*tied) == pytest.approx(_brute_spearman(*tied))
    # a constant series (a collapsed generator's KID) has no rank correlation; fewer than 3 points neither
    assert math.isnan(_rho([(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)])) and math.isnan(_rho([(1.0, 2.0), (2.0, 1.0)]))
    assert _rho([(1.0, 1.0), (math.nan, 9.0), (2.0, 3.0), (3.0, 2.0)]) == pytest.approx(spearman([1, 2, 3], [1, 3, 2]))


def test_losses_from_log_records_and_window_means():
    records = [{"step": 0, "event": "speed"},
               {"step": 1, "critic_loss": 1.0, "generator_loss": 0.7, "critic/em_estimate": -1.0},
               {"step": 2, "critic_loss": 0.6, "generator_loss": 0.9, "critic/em_estimate": -0.6},
               {"step": 2, "eval/kid": 5.0},
               {"step": 3, "critic_loss": 1.2, "generator_loss": 0.5, "critic/em_estimate": -1.2}]
    js = loss_series(records, "js")
    # the JS bound ½ L(D) + log 2 with L(D) = −critic loss
    assert js == {1: pytest.approx(math.log(2) - 0.5), 2: pytest.approx(math.log(2) - 0.3),
                  3: pytest.approx(math.log(2) - 0.6)}
    assert loss_series(records, "em") == {1: -1.0, 2: -0.6, 3: -1.2}
    assert loss_series(records, "gen") == {1: 0.7, 2: 0.9, 3: 0.5}
    # windows (s − 2, s]: step 2 → steps 1, 2; step 4 → step 3 only; step 9 → empty
    got = window_means({1: 1.0, 2: 3.0, 3: 5.0}, [2, 4, 9], 2)
    assert got[:2] == [2.0, 5.0] and math.isnan(got[2])
    with pytest.raises(ValueError, match="unknown loss"):
        loss_series(records, "kl")


def test_run_configs_carry_the_papers_settings():
    opts = WganQualityOptions()
    w = _config("wgan", 1, opts)
    assert w.objective.name == "wgan" and w.objective.params["clip"] == 0.01
    assert w.optim.optimizer == "rmsprop" and w.optim.lr_generator == w.optim.lr_critic == 5e-4
    assert (w.train.n_critic, w.train.extra_critic_steps, w.train.extra_critic_until, w.train.extra_critic_every) == \
        (5, 100, 25, 500)
    assert w.train.seed == 1 and w.model.generator == "dcgan"
    assert w.model.critic_params["norm"] == "batch"
    g = _config("gan", 0, opts)
    assert g.objective.name == "gan" and g.optim.optimizer == "adam" and g.train.extra_critic_steps == 0
    assert g.train.n_critic == 1 and g.model.critic_params["norm"] == "batch"
    critic = build_run(g).critic  # the built discriminator has batch norm after every conv but the first
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert len([m for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]) == len(convs) - 1 >= 2
    assert not isinstance(list(critic.modules())[list(critic.modules()).index(convs[0]) + 1], nn.BatchNorm2d)
    plain = _config("gan", 0, WganQualityOptions(critic_norm="none", gan_n_critic=5))
    assert plain.train.n_critic == 5 and not any(isinstance(m, nn.BatchNorm2d) for m in build_run(plain).critic.modules())
    for bad, match in (({"critic_norm": "group"}, "critic_norm must be one of"), ({"gan_n_critic": 0}, "gan_n_critic")):
        with pytest.raises(ValueError, match=match):
            figures.get("wgan-loss-tracks-quality").fn(WganQualityOptions(**bad), None)
    m = _config("wgan-mlp", 0, opts)
    assert m.model.generator == m.model.critic == "mlp" and m.optim.lr_critic == 5e-3
    assert m.model.generator_params["hidden"] == 512 and m.model.critic_params["depth"] == 4
    with pytest.raises(ValueError, match="log_every must divide"):
        figures.get("wgan-loss-tracks-quality").fn(WganQualityOptions(log_every=3, eval_every=50), None)


def test_quick_figure_correlations_match_a_brute_force_recomputation(tmp_path):
    out = tmp_path / "fig"
    assert main(["figure", "wgan-loss-tracks-quality", "--quick", "--out", str(out)]) == 0
    payload = json.loads((out / "wgan-loss-tracks-quality.json").read_text())
    opts = payload["options"]
    assert {p.rsplit("/", 1)[-1] for p in payload["figures"]} == {
        "wgan-loss-tracks-quality.png", "wgan-loss-tracks-quality-samples.png"}
    assert all((out / p.rsplit("/", 1)[-1]).is_file() for p in payload["figures"])
    kinds = [(r["kind"], r["seed"]) for r in payload["runs"]]
    assert kinds == [("wgan", 0), ("gan", 0), ("wgan", 1), ("gan", 1), ("wgan-mlp", 0)]
    for r in payload["runs"]:
        lines = [json.loads(l) for l in (out / "runs" / r["kind"] / f"seed{r['seed']}" / "metrics.jsonl").read_text().splitlines()]
        kid = {l["step"]: l["eval/kid"] for l in lines if "eval/kid" in l}
        steps = sorted(kid)
        assert [s for s, _ in r["kid"]] == steps == list(range(opts["eval_every"], opts["steps"] + 1, opts["eval_every"]))
        logs = {l["step"]: l for l in lines if "critic_loss" in l}
        for name in {"wgan": ["em"], "gan": ["js", "gen"], "wgan-mlp": ["em"]}[r["kind"]]:
            value = {"em": lambda l: l["critic/em_estimate"], "js": lambda l: math.log(2) - 0.5 * l["critic_loss"],
                     "gen": lambda l: l["generator_loss"]}[name]
            at = [sum(value(logs[t]) for t in logs if s - opts["eval_every"] < t <= s)
                  / sum(1 for t in logs if s - opts["eval_every"] < t <= s) for s in steps]
            assert r["at_eval"][name] == pytest.approx(at)
            assert r["spearman"][name] == pytest.approx(_brute_spearman(at, [kid[s] for s in steps]))
            late = [(a, kid[s]) for s, a in zip(steps, at) if s >= opts["late_from"]]
            assert r["spearman_late"][name] == pytest.approx(_brute_spearman(*zip(*late)))
    for key, c in payload["correlations"].items():
        kind, name = key.split("/")
        per = [r["spearman"][name] for r in payload["runs"] if r["kind"] == kind]
        assert c["per_seed"] == pytest.approx(per) and c["mean"] == pytest.approx(sum(per) / len(per))
        late = [r["spearman_late"][name] for r in payload["runs"] if r["kind"] == kind]
        assert c["late_per_seed"] == pytest.approx(late) and c["late_mean"] == pytest.approx(sum(late) / len(late))
    assert set(payload["correlations"]) == {"wgan/em", "gan/js", "gan/gen", "wgan-mlp/em"}
    assert payload["verdict"] in ("reproduced", "partly reproduced", "not reproduced")
    assert payload["failing"]["verdict"] in ("reproduced", "partly reproduced", "not reproduced")
    # the samples grids were written at the snapshot steps
    assert sorted(p.name for p in (out / "runs" / "wgan" / "seed0" / "samples").glob("step_*.png"))[-1] == "step_0000006.png"
    # a second call reads the runs back, trains nothing, and gives the same numbers
    assert main(["figure", "wgan-loss-tracks-quality", "--quick", "--out", str(out)]) == 0
    again = json.loads((out / "wgan-loss-tracks-quality.json").read_text())
    assert again["correlations"] == payload["correlations"]
