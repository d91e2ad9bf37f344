"""Speed switches (igm.train.speed): parsing and validation, per-device / per-objective
resolution, bf16 autocast with float32 kernels and penalties, channels_last equivalence, the
float32 output layer, short training runs with each switch, and (opt-in) torch.compile."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import igm.nn
import igm.objectives as O
from igm import kernels
from igm.nn.spectral import ScaledSpectralNorm
from igm.train import ConfigError, apply_overrides, build_run, load_run, presets, train
from igm.train import speed
from probes import Once as _Once

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # only resolved against, never used for tensors
DOUBLE_BACKWARD = {"wgan-gp", "lgan", "sobolev", "smmd", "swgan", "gcmmd", "mmd-gan-gp"}

# tiny digits runs (16×16 images, DCGANs with 8 base channels): a step is a few ms on one core
DIGITS = [
    "train.batch_size=8",
    "train.n_critic=1",
    "train.progress=false",
    "train.log_every=1",
    "train.sample_every=0",
    "eval.every=0",
    "model.generator_params.base_channels=8",
    "model.critic_params.base_channels=8",
]


def digits_cfg(preset: str, *overrides: str, steps: int = 2):
    return apply_overrides(presets.get(preset), [*DIGITS, f"train.steps={steps}", *overrides])


def image_nets(arch: str = "dcgan", out_dim: int = 1, spectral=None, shape=(1, 16, 16)):
    torch.manual_seed(0)
    width = {"dcgan": {"base_channels": 8}, "sngan": {"base_channels": 8}, "resnet": {"channels": 8}}[arch]
    g = igm.nn.build(arch, "generator", shape=shape, z_dim=8, **width)
    c = igm.nn.build(arch, "critic", shape=shape, out_dim=out_dim, spectral=spectral, **width)
    return g, c


# ------------------------------------------------------------------------ parsing and validation


def test_switches_parse_with_yaml_booleans():
    cfg = apply_overrides(presets.get("ring-smmd"), ["train.amp=bf16", "train.channels_last=on", "train.compile=generator", "train.cudnn_benchmark=off"])
    # YAML 1.1 reads on/off as booleans; they map back to the switch names
    assert cfg.train.channels_last is True and cfg.train.cudnn_benchmark is False
    assert speed.validate(cfg.train) == {"amp": "bf16", "channels_last": "on", "compile": "generator", "cudnn_benchmark": "off"}
    cfg = apply_overrides(presets.get("ring-smmd"), ["train.amp=false", "train.compile=true"])
    assert speed.validate(cfg.train) == {"amp": "off", "channels_last": "auto", "compile": "on", "cudnn_benchmark": "auto"}
    defaults = speed.validate(presets.get("ring-smmd").train)
    assert defaults == {"amp": "auto", "channels_last": "auto", "compile": "off", "cudnn_benchmark": "auto"}


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.amp=fp8", "train.amp must be one of auto, off, bf16; got 'fp8'"),
        ("train.amp=fp16", "fp16 is not supported: it needs a GradScaler"),
        ("train.channels_last=maybe", "train.channels_last must be one of auto, on, off; got 'maybe'"),
        ("train.compile=auto", "train.compile must be one of off, on, generator; got 'auto'"),
        ("train.cudnn_benchmark=fast", "train.cudnn_benchmark must be one of auto, on, off; got 'fast'"),
        ("train.channels_last=3", "train.channels_last: expected bool or str, got 3"),
    ],
)
def test_bad_switch_values_are_one_line_config_errors(override, message, tiny_cfg):
    with pytest.raises(ConfigError) as err:
        build_run(tiny_cfg("ring-smmd", override))
    assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------ resolution


def test_cpu_defaults_change_nothing(tiny):
    run = tiny("ring-smmd")
    s = run.speed
    assert (s.amp, s.channels_last_generator, s.channels_last_critic, s.compile_generator, s.compile_critic, s.cudnn_benchmark) == (
        "off", False, False, False, False, False
    )
    g, c = speed.forwards(run)
    assert g is run.generator and c is run.critic  # no wrapper at all: identical to a run without switches
    assert "amp: auto is float32 off CUDA" in s.notes


@pytest.mark.parametrize("name", O.names())
def test_auto_on_a_bf16_gpu(name, monkeypatch):
    monkeypatch.setattr(speed, "_bf16_supported", lambda device: True)
    cfg = presets.get("digits-smmd")
    g, c = image_nets(out_dim=1)
    obj = O.get(name, **({"ae_weight": 0.0} if name == "mmd-gan" else {}))
    s = speed.resolve(cfg, CUDA, obj, g, c if obj.uses_critic else None)
    assert s.amp == ("off" if name in ("gram", "gcmmd") else "bf16")
    assert s.channels_last_generator and s.channels_last_critic == obj.uses_critic
    assert s.cudnn_benchmark and not s.compile_generator and not s.compile_critic
    assert s.fp32_output_layer == (("net.6" if obj.uses_critic else None) if s.amp == "bf16" else None)
    # the same settings on a GPU without native bf16, and on the CPU
    monkeypatch.setattr(speed, "_bf16_supported", lambda device: False)
    assert speed.resolve(cfg, CUDA, obj, g, c).amp == "off"
    cpu = speed.resolve(cfg, CPU, obj, g, c)
    assert (cpu.amp, cpu.channels_last_generator, cpu.channels_last_critic, cpu.cudnn_benchmark) == ("off", False, False, False)


def test_auto_leaves_mlps_alone_and_explicit_values_win(monkeypatch):
    monkeypatch.setattr(speed, "_bf16_supported", lambda device: True)
    cfg = presets.get("ring-wgan-gp")
    g = igm.nn.build("mlp", "generator", shape=(2,), z_dim=2)
    c = igm.nn.build("mlp", "critic", shape=(2,), out_dim=1)
    s = speed.resolve(cfg, CUDA, O.get("wgan-gp"), g, c)
    assert (s.amp, s.channels_last_generator, s.channels_last_critic, s.cudnn_benchmark) == ("off", False, False, False)
    forced = apply_overrides(cfg, ["train.amp=bf16", "train.channels_last=off", "train.cudnn_benchmark=off"])
    gi, ci = image_nets()
    s = speed.resolve(forced, CUDA, O.get("gram"), gi, ci)
    assert s.amp == "bf16" and not s.channels_last_critic and not s.cudnn_benchmark
    assert any("auto keeps in float32" in n for n in s.notes)


def test_compile_is_refused_for_double_backward_critics():
    g, c = image_nets()
    on = apply_overrides(presets.get("digits-gan"), ["train.compile=on"])
    for name in O.names():
        obj = O.get(name)
        s = speed.resolve(on, CPU, obj, g, c if obj.uses_critic else None)
        assert s.compile_generator, name
        assert s.double_backward == (name in DOUBLE_BACKWARD), name
        assert s.compile_critic == (obj.uses_critic and name not in DOUBLE_BACKWARD), name
        if name in DOUBLE_BACKWARD:
            assert any("double backward" in n for n in s.notes), name
    s = speed.resolve(on, CPU, O.get("mmd-gan-gp", gp_weight=0.0), g, c)
    assert s.compile_critic and not s.double_backward
    _, sn = image_nets("sngan", spectral="learned")
    s = speed.resolve(on, CPU, O.get("gan"), g, sn)
    assert s.compile_generator and not s.compile_critic  # in-place power iterations break compiled backward
    assert any("spectral normalisation" in n for n in s.notes)
    only_g = apply_overrides(on, ["train.compile=generator"])
    s = speed.resolve(only_g, CPU, O.get("gan"), g, c)
    assert s.compile_generator and not s.compile_critic


@pytest.mark.parametrize("name", [n for n in O.names() if O.get(n).uses_critic])
def test_double_backward_table_matches_the_objectives(name):
    """An independent check of the declared needs: a critic step through a once-differentiable layer fails
    exactly for the objectives the table marks as double-backward."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), _Once(), nn.Linear(16, 1))
    obj = O.get(name, **({"ae_weight": 0.0} if name == "mmd-gan" else {}))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)

    def step():
        if obj.simultaneous:
            loss, _, _ = obj.joint_loss(critic, real, fake)
        else:
            loss, _ = obj.critic_loss(critic, real, fake)
        loss.backward()

    if speed.objective_policy(obj).double_backward:
        with pytest.raises(RuntimeError, match="double backward through this layer"):
            step()
    else:
        step()


# ------------------------------------------------------------------------ bf16 autocast


SEEN: list[tuple[torch.dtype, bool]] = []


@dataclass(frozen=True)
class SpyGaussian(kernels.Gaussian):
    """Records the dtype of the features it gets and whether autocast was on."""

    def gram(self, pw):
        SEEN.append((pw.a.dtype, torch.is_autocast_enabled("cpu")))
        return super().gram(pw)


def _bf16(critic):
    speed.fp32_output_layer(critic)
    return speed.SpeedForward(critic, amp_dtype=torch.bfloat16, device_type="cpu")


def _inner_dtypes(critic):
    """Forward hooks recording the output dtype of the first conv and of the output layer."""
    seen = {}
    first = next(m for m in critic.modules() if isinstance(m, nn.Conv2d))
    head = speed._output_layer(critic)[1]

    def record(key):
        def hook(module, inputs, output):  # returns None: the output is left alone
            seen.setdefault(key, output.dtype)

        return hook

    first.register_forward_hook(record("first"))
    head.register_forward_hook(record("head"))
    return seen


@pytest.mark.parametrize("name, params, out_dim", [("smmd", {"kernel": SpyGaussian()}, 1), ("mmd-gan-gp", {"kernel": SpyGaussian()}, 4), ("wgan-gp", {}, 1)])
def test_bf16_critic_step_matches_float32_with_float32_kernel_and_penalty(name, params, out_dim, monkeypatch):
    _, critic = image_nets(out_dim=out_dim)
    for m in critic.modules():  # PyTorch's default init, output ×10: O(1) feature differences, so a
        if isinstance(m, (nn.Conv2d, nn.Linear)):  # Gaussian kernel sees more than 1 − 1e-5
            m.reset_parameters()
    with torch.no_grad():
        critic.net[6].weight.mul_(10.0)
    obj = O.get(name, **params)
    torch.manual_seed(1)
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    fake = 0.3 * torch.randn(16, 1, 16, 16) + 0.4  # a different distribution: the MMD² is not ~0

    penalties = []  # (dtype of the per-sample input gradient, autocast on) at the penalty
    module = {"wgan-gp": "igm.objectives.wgan", "mmd-gan-gp": "igm.objectives.mmd_gan"}.get(name)
    if module is not None:
        import importlib

        mod = importlib.import_module(module)
        original = mod.gradient_penalty

        def spy(grad, *args, **kwargs):
            penalties.append((grad.dtype, torch.is_autocast_enabled("cpu")))
            return original(grad, *args, **kwargs)

        monkeypatch.setattr(mod, "gradient_penalty", spy)
    else:
        import igm.objectives.smmd as mod

        original = mod.jacobian_sqnorm

        def spy(features, inputs, **kwargs):
            out = original(features, inputs, **kwargs)
            penalties.append((out.dtype, torch.is_autocast_enabled("cpu")))
            return out

        monkeypatch.setattr(mod, "jacobian_sqnorm", spy)

    def loss_and_grads(call):
        critic.zero_grad(set_to_none=True)
        torch.manual_seed(2)  # the same interpolates for both
        loss, stats = obj.critic_loss(call, real, fake)
        loss.backward()
        return loss.detach(), stats, torch.cat([p.grad.flatten() for p in critic.parameters()])

    SEEN.clear()
    ref_loss, ref_stats, ref_grad = loss_and_grads(critic)
    assert all(dtype == torch.float32 for dtype, _ in SEEN + penalties)
    SEEN.clear()
    penalties.clear()
    wrapped = _bf16(critic)
    inner = _inner_dtypes(critic)
    loss, stats, grad = loss_and_grads(wrapped)
    # the critic really ran in bf16, except its float32 output layer ...
    assert inner == {"first": torch.bfloat16, "head": torch.float32}
    # ... and kernels and penalties got float32 inputs with autocast off
    assert SEEN or name == "wgan-gp"
    assert penalties and all(dtype == torch.float32 and not on for dtype, on in SEEN + penalties)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # each term (MMD², scale, penalty, ...) within bf16 accuracy: an 8-bit mantissa, 0.1-2% here after a few
    # layers (the loss itself can be a near-cancelling sum of terms, so compare the terms)
    for key, ref in ref_stats.items():
        assert math.isclose(float(stats[key]), float(ref), rel_tol=5e-2), (key, float(stats[key]), float(ref))
    cos = torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0)
    assert cos > 0.98, float(cos)


def test_bf16_forwards_return_float32():
    g, _ = image_nets()
    z = torch.randn(3, 8)
    out = speed.SpeedForward(g, amp_dtype=torch.bfloat16, device_type="cpu")(z)
    assert out.dtype == torch.float32 and out.shape == (3, 1, 16, 16)  # fake images enter the critic in float32
    torch.testing.assert_close(out, g(z), atol=3e-2, rtol=0)
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 4, 2, 1), nn.Flatten())  # no Linear output layer to keep in float32
    assert speed.fp32_output_layer(conv_only) is None
    feats = _bf16(conv_only)(torch.randn(3, 1, 16, 16))
    assert feats.dtype == torch.float32


def test_fp32_output_layer_survives_deepcopy_and_keeps_the_state_dict():
    _, critic = image_nets(out_dim=3)
    keys = list(critic.state_dict())
    assert speed.fp32_output_layer(critic) == "net.6"
    assert speed.fp32_output_layer(critic) == "net.6"  # idempotent
    assert list(critic.state_dict()) == keys
    clone = copy.deepcopy(critic)
    with torch.no_grad():
        clone.net[6].bias.add_(1.0)
    x = torch.randn(2, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, out_clone = critic(x), clone(x)
    assert out.dtype == out_clone.dtype == torch.float32
    torch.testing.assert_close(out_clone - out, torch.ones_like(out), atol=2e-2, rtol=0)  # the copy uses its own layer


def test_autoencoder_critic_output_layer_and_decode_under_bf16():
    critic = igm.nn.build("dcgan-ae", "critic", shape=(1, 16, 16), out_dim=4, base_channels=8)
    wrapped = _bf16(critic)
    assert speed._output_layer(critic)[0] == "encoder.net.6"
    feats = wrapped(torch.randn(3, 1, 16, 16))
    recon = wrapped.decode(feats)
    assert feats.dtype == recon.dtype == torch.float32 and recon.shape == (3, 1, 16, 16)
    assert list(wrapped.parameters()) == list(critic.parameters())


def test_spectral_normalisation_stays_float32_under_autocast(monkeypatch):
    seen = []
    original = ScaledSpectralNorm.sigma

    def spy(self, weight):
        seen.append((torch.is_autocast_enabled("cpu"), weight.dtype))
        return original(self, weight)

    monkeypatch.setattr(ScaledSpectralNorm, "sigma", spy)
    _, critic = image_nets(arch="sngan", spectral="learned")
    out = _bf16(critic)(torch.randn(2, 1, 16, 16))
    assert out.dtype == torch.float32 and seen
    assert all(on is False and dtype == torch.float32 for on, dtype in seen)


# ------------------------------------------------------------------------ channels_last


@pytest.mark.parametrize("arch", ["dcgan", "sngan", "resnet"])
def test_channels_last_gives_the_same_outputs_and_input_gradients(arch):
    g, c = image_nets(arch, out_dim=2, shape=(3, 16, 16))  # 3 channels: with 1, NCHW is also NHWC
    g2, c2 = copy.deepcopy(g), copy.deepcopy(c)
    s = speed.SpeedSettings(channels_last_generator=True, channels_last_critic=True)
    speed.prepare_models(s, g2, c2)
    conv = next(m for m in c2.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.dim() == 4
    torch.manual_seed(3)
    z = torch.randn(4, 8)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    fg, fc = speed.SpeedForward(g2, channels_last=True), speed.SpeedForward(c2, channels_last=True)
    seen = []
    conv.register_forward_pre_hook(lambda m, i: seen.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    torch.testing.assert_close(fg(z), g(z), atol=1e-5, rtol=1e-5)
    out, out2 = c(x), fc(x2)
    assert seen == [True]  # the batch entering the critic was made channels_last
    torch.testing.assert_close(out2, out, atol=1e-5, rtol=1e-5)
    (gx,) = torch.autograd.grad(out.sum(), x)
    (gx2,) = torch.autograd.grad(out2.sum(), x2)
    torch.testing.assert_close(gx2, gx, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------ short training runs


def _finite_losses(run, tmp_path=None):
    logs = []
    summary = train(run, callbacks=[lambda ev, step, values: logs.append((ev, values))])
    values = [v for ev, v in logs if ev == "log"]
    assert values and all(math.isfinite(v[k]) for v in values for k in ("critic_loss", "generator_loss") if k in v)
    assert any("generator_loss" in v for v in values)
    return summary


@pytest.mark.parametrize(
    "preset, overrides, applied",
    [
        ("digits-wgan-gp", ["train.amp=bf16"], {"amp": "bf16"}),
        ("digits-smmd", ["train.amp=bf16", "train.channels_last=on"], {"amp": "bf16", "channels_last_critic": True}),
        ("digits-gram", ["train.amp=bf16"], {"amp": "bf16"}),
        ("digits-mmd-gan", ["train.channels_last=on"], {"channels_last_generator": True, "channels_last_critic": True}),
        ("digits-sobolev", ["train.cudnn_benchmark=on"], {"cudnn_benchmark": False}),  # no effect off CUDA
        ("digits-mmd-net", ["train.amp=bf16", "train.channels_last=on"], {"amp": "bf16", "channels_last_generator": True}),
    ],
)
def test_short_runs_with_each_switch(preset, overrides, applied, tmp_path):
    run = build_run(digits_cfg(preset, *overrides), tmp_path)
    watched = run.critic if run.critic is not None else run.generator
    seen = set()  # (dtype, NHWC) of the first conv layer's outputs during training
    conv = next(m for m in watched.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    conv.register_forward_hook(lambda m, i, o: seen.add((o.dtype, o.dim() == 4 and not o.is_contiguous())))
    summary = _finite_losses(run)
    s = run.speed
    layout = s.channels_last_critic if run.critic is not None else s.channels_last_generator
    expected = {(torch.bfloat16 if s.amp == "bf16" else torch.float32, layout)}
    if run.critic is None:  # the final samples come from the plain generator, in float32
        expected.add((torch.float32, layout))
    assert seen == expected
    for key, value in applied.items():
        assert summary["speed"][key] == value, key
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["speed"] == summary["speed"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in records if r.get("event") == "speed"]
    assert len(events) == 1 and events[0]["step"] == 0 and events[0]["speed"] == summary["speed"]


def test_channels_last_checkpoint_resumes_without_it(tmp_path):
    run = build_run(digits_cfg("digits-wgan-gp", "train.channels_last=on", "train.amp=bf16", "train.checkpoint_every=1"), tmp_path)
    _finite_losses(run)
    resumed = load_run(tmp_path, ["train.channels_last=off", "train.amp=off", "train.steps=3"])
    assert not resumed.speed.channels_last_critic and resumed.speed.amp == "off"
    summary = train(resumed, resume=True)
    assert summary["step"] == 3
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"speed"' in line]
    assert [e["speed"]["amp"] for e in events] == ["bf16", "off"]  # one record per training session


# ------------------------------------------------------------------------ torch.compile (opt-in)

compile_reason = (
    "torch.compile builds C++ kernels for each graph: about a minute per graph on this 2-core CPU "
    "with a cold cache; set IGM_TEST_COMPILE=1 to run"
)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("IGM_TEST_COMPILE"), reason=compile_reason)
def test_compiled_generator_matches_eager():
    g, _ = image_nets("dcgan")
    g.eval()  # batch norm with running stats: outputs do not depend on the batch
    s = speed.SpeedSettings(compile_generator=True)
    compiled = speed._wrap(g, s, channels_last=False, compile_it=True)
    z = torch.randn(4, 8)
    t = time.perf_counter()
    with torch.no_grad():
        out = compiled(z)
    print(f"compile + first call: {time.perf_counter() - t:.1f} s")
    torch.testing.assert_close(out, g(z), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("IGM_TEST_COMPILE"), reason=compile_reason)
@pytest.mark.parametrize(
    "preset, extra, critic_compiled",
    [("digits-gan", [], True), ("digits-gan", ["model.spectral=learned"], False), ("digits-wgan-gp", [], False)],
)
def test_short_runs_with_compile(preset, extra, critic_compiled):
    run = build_run(digits_cfg(preset, "train.compile=on", *extra))
    assert run.speed.compile_generator and run.speed.compile_critic == critic_compiled
    _finite_losses(run)
    gf, cf = speed.forwards(run)
    assert isinstance(gf, speed.SpeedForward) and gf._call is not run.generator
    assert (isinstance(cf, speed.SpeedForward) and cf._call is not run.critic) == critic_compiled
