"""The ``igm`` command line: parse, build from the registries, call the library.

Errors in what the user typed are one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import yaml

DEFAULT_DIRAC = (
    "mmd=smmd:grad_weight=0",
    "smmd",
    "smmd-paper=smmd:grad_weight=1,lam=1",
    "swgan",
    "wgan-gp",
)


class UsageError(Exception):
    """A problem with the user's input; printed as one line."""


def parse_objective_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``[label=]name[:key=value,key=value]`` → (label, name, hyperparameters)."""
    head, colon, params = spec.partition(":")
    label, _, name = head.rpartition("=")
    rest = head if not label else name
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"igm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
