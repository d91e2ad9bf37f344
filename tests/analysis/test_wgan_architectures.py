"""``igm figure wgan-architecture-robustness`` (seed 001, figures 5-7): each of the six runs has
the intended generator (in its config and in its saved checkpoint), the mode-collapse indicator on
hand cases, and the quick run's per-combination aggregation against a direct computation."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from torch import nn

from igm.analysis import figures
from igm.analysis.wgan_architectures import (GENERATORS, OBJECTIVES, ArchitectureOptions, _config, class_spread,
                                             combo_overrides)
from igm.cli import main
from igm.nn.dcgan import DCGANGenerator, num_stages
from igm.nn.mlp import MLPGenerator

pytest.importorskip("mlxtend")


def _build(cfg) -> nn.Module:
    import igm.nn

    m = cfg.model
    return igm.nn.build(m.generator, "generator", shape=(1, 28, 28), z_dim=m.z_dim, **m.generator_params)


def _check_generator(generator: str, model: nn.Module, width: int, hidden: int, depth: int) -> None:
    """The generator is what ``generator`` names: BN DCGAN, no-BN constant-width DCGAN, ReLU MLP."""
    batchnorms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm))]
    if generator == "mlp":
        assert isinstance(model, MLPGenerator) and not batchnorms
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert [l.out_features for l in linears] == [hidden] * depth + [28 * 28]
        assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == depth and isinstance(model.out, nn.Tanh)
        return
    assert isinstance(model, DCGANGenerator)
    convs = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == num_stages(28, "dcgan", allow_28=True) == 3
    if generator == "dcgan":
        assert len(batchnorms) == 3 and all(isinstance(b, nn.BatchNorm2d) for b in batchnorms)
        ins = [c.in_channels for c in convs]
        assert ins == [ins[0], ins[0] // 2, ins[0] // 4]  # the widths halve towards the image
    else:
        assert not batchnorms
        assert model.fc.out_features == 16 * width
        assert [c.in_channels for c in convs] == [width] * 3 and [c.out_channels for c in convs] == [width, width, 1]


def test_configs_have_the_intended_generators_and_objectives():
    opts = ArchitectureOptions()
    for o in OBJECTIVES:
        for g in GENERATORS:
            cfg = _config(o, g, 1, opts)
            assert cfg.model.critic == "dcgan" and cfg.model.critic_params == {"base_channels": 16, "norm": "batch"}
            assert cfg.train.seed == 1 and cfg.train.steps == 2000
            _check_generator(g, _build(cfg), 64, 512, 4)
            if o == "wgan":
                assert cfg.objective.name == "wgan" and cfg.objective.params["clip"] == 0.01
                assert cfg.optim.optimizer == "rmsprop" and cfg.optim.lr_generator == cfg.optim.lr_critic == 5e-4
                assert (cfg.train.extra_critic_steps, cfg.train.extra_critic_until, cfg.train.extra_critic_every) == \
                    (100, 25, 500)
            else:
                assert cfg.objective.name == "gan" and cfg.optim.optimizer == "adam" and cfg.train.extra_critic_steps == 0
                assert cfg.train.n_critic == 1
    assert combo_overrides("gan", "dcgan-nobn", 0, opts)[-1] == "model.generator_params.channels=[64, 64, 64]"
    with pytest.raises(ValueError, match="unknown combination"):
        combo_overrides("wgan", "resnet", 0, opts)
    with pytest.raises(ValueError, match="snapshots must divide"):
        figures.get("wgan-architecture-robustness").fn(ArchitectureOptions(steps=10, snapshots=3), None)


def test_class_spread_on_hand_cases():
    import igm.data

    real = igm.data.get("mnist5k").sample(300, torch.Generator().manual_seed(0))
    same = real[:1].repeat(10, 1, 1, 1)
    s = class_spread(same)
    assert s["classes"] == 1 and s["top_share"] == 1.0 and sum(s["counts"]) == 10 and len(s["counts"]) == 10
    r = class_spread(real)  # real digits: every class, none dominant
    assert r["classes"] == 10 and r["top_share"] < 0.2 and sum(r["counts"]) == 300
    half = class_spread(torch.cat([same, real[:10]]))
    assert half["top_share"] >= 0.5 and half["counts"][s["counts"].index(10)] >= 10


def test_quick_figure_aggregation_matches_a_direct_computation(tmp_path):
    from igm.train.sampling import load_generator

    out = tmp_path / "fig"
    assert main(["figure", "wgan-architecture-robustness", "--quick", "--out", str(out)]) == 0
    payload = json.loads((out / "wgan-architecture-robustness.json").read_text())
    opts = payload["options"]
    assert {p.rsplit("/", 1)[-1] for p in payload["figures"]} == {
        "wgan-architecture-robustness.png", "wgan-architecture-robustness-samples.png"}
    assert all((out / p.rsplit("/", 1)[-1]).is_file() for p in payload["figures"])
    assert set(payload) >= {"runs", "combinations", "parts", "verdict", "verdict_rule", "summary"}
    assert "{" not in payload["verdict_rule"] and f"at least {opts['collapse_share']:g} " in payload["verdict_rule"]
    assert [(r["objective"], r["generator"], r["seed"]) for r in payload["runs"]] == [
        (o, g, s) for s in range(opts["seeds"]) for o in OBJECTIVES for g in GENERATORS]
    for r in payload["runs"]:
        run_dir = out / "runs" / f"{r['objective']}-{r['generator']}" / f"seed{r['seed']}"
        model, _, cfg = load_generator(run_dir)  # the trained run really has the intended generator
        _check_generator(r["generator"], model, opts["constant_width"], opts["mlp_hidden"], opts["mlp_depth"])
        assert cfg.objective.name == r["objective"]
        lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
        kids = {l["step"]: l["eval/kid"] for l in lines if "eval/kid" in l}
        assert r["kid"] == pytest.approx(kids[opts["steps"]]) and r["step"] == opts["steps"]
        assert sum(r["class_counts"]) == opts["collapse_samples"]
        assert r["classes"] == sum(c > 0 for c in r["class_counts"])
        assert r["top_share"] == pytest.approx(max(r["class_counts"]) / opts["collapse_samples"])
        assert r["collapsed"] == (r["top_share"] >= opts["collapse_share"])
    assert list(payload["combinations"]) == [f"{o}/{g}" for o in OBJECTIVES for g in GENERATORS]
    for key, c in payload["combinations"].items():
        mine = [r for r in payload["runs"] if f"{r['objective']}/{r['generator']}" == key]
        kid = [r["kid"] for r in mine]
        mean = sum(kid) / len(kid)
        assert c["kid_mean"] == pytest.approx(mean)
        assert c["kid_std"] == pytest.approx((sum((k - mean) ** 2 for k in kid) / (len(kid) - 1)) ** 0.5)
        assert c["fid_mean"] == pytest.approx(statistics.fmean(r["fid"] for r in mine))
        assert c["top_share_mean"] == pytest.approx(sum(r["top_share"] for r in mine) / len(mine))
        assert c["collapsed_seeds"] == sum(r["collapsed"] for r in mine) and c["seeds"] == opts["seeds"]
        assert c["trains"] == all(r["kid"] <= r["kid_untrained"] - opts["trains_margin"] for r in mine)
    assert payload["verdict"] in ("reproduced", "partly reproduced", "not reproduced")
    assert len(payload["summary"]) == 6 + len(payload["parts"]) + 2
    # a second call reads the runs back, trains nothing, and gives the same numbers
    assert main(["figure", "wgan-architecture-robustness", "--quick", "--out", str(out)]) == 0
    again = json.loads((out / "wgan-architecture-robustness.json").read_text())
    assert again["combinations"] == payload["combinations"]
