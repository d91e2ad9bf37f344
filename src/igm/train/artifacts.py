"""What a run writes besides checkpoints: metrics.jsonl, TensorBoard scalars, sample images."""

from __future__ import annotations

import errno
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["MetricsLog", "read_metrics", "training_seconds", "image_grid", "save_image_grid", "save_scatter"]

WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}


def _quiet_tensorboard_write_errors() -> None:
    """TensorBoard writes events from a background thread, which dies with a traceback when the disk
    is full or read-only. The training loop meets the same error on its own next write and reports
    it in one line (igm.train.loop.OutputError), so that thread's traceback is dropped; every other
    thread exception is passed on untouched."""
    previous = threading.excepthook
    if getattr(previous, "_igm_filter", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        exc = args.exc_value
        if (isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS
                and type(args.thread).__module__.startswith("tensorboard")):
            return
        previous(args)

    hook._igm_filter = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (the file, or the run directory holding it), in order."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_seconds(records: list[dict[str, Any]]) -> dict[int, float]:
    """``{step: training seconds up to that step}`` at each logged step: ``sec_per_step`` × the
    steps of its logging window, summed. A resumed run dropped the records after its checkpoint and
    logged the steps it trained again, so each step counts once, whatever the number of attempts."""
    elapsed, last, at_step = 0.0, 0, {}
    for record in records:
        step = int(record["step"])
        if "sec_per_step" in record and step > last:
            elapsed += float(record["sec_per_step"]) * (step - last)
            last = step
            at_step[step] = elapsed
    return at_step


class MetricsLog:
    """Appends one JSON object per logged step to ``metrics.jsonl`` and mirrors scalars to
    TensorBoard. On resume, lines past the checkpoint's step are dropped."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.run_dir = run_dir
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(run_dir))
                _quiet_tensorboard_write_errors()
            except ImportError as exc:  # tensorboard is a dependency; say so if it is missing
                import warnings

                warnings.warn(f"TensorBoard logging is off ({exc}); install it with `pip install tensorboard`", stacklevel=2)
                self._writer = None

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a crash mid-write
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                keep.append(line)
        self.path.write_text("".join(line + "\n" for line in keep))

    def write(self, step: int, values: dict[str, Any]) -> None:
        record = {"step": int(step), **values}
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


def image_grid(images: Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(n, C, H, W) in [−1, 1] → an (H', W', 3) uint8 grid."""
    images = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    elif c != 3:
        raise ValueError(f"image grids need 1 or 3 channels; got {c}")
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = torch.ones(3, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = images[i]
    return ((grid.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def save_image_grid(images: Tensor, path: Path, nrow: int | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image_grid(images, nrow)
    scale = max(1, 512 // max(arr.shape[:2]))  # small images are upscaled for viewing
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
    img.save(path)
    return path


def save_scatter(samples: Tensor, path: Path, dataset=None, title: str = "") -> Path:
    """2-D samples over the target density (contours of ``dataset.log_prob`` when available)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    pts = samples.detach().double().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    modes = getattr(dataset, "modes", None)
    ref = modes.double().numpy() if modes is not None else pts
    lo, hi = ref.min(0) - 1.0, ref.max(0) + 1.0
    if hasattr(dataset, "log_prob"):
        xs, ys = np.linspace(lo[0], hi[0], 400), np.linspace(lo[1], hi[1], 400)
        gx, gy = np.meshgrid(xs, ys)
        grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
        dens = dataset.log_prob(grid.float()).double().exp().reshape(gx.shape).numpy()
        peak = float(dens.max())
        # filled regions within 3, 2 and 1 standard deviations of each mode
        levels = [peak * math.exp(-k * k / 2) for k in (3, 2, 1)] + [peak * 1.01]
        ax.contourf(gx, gy, dens, levels=levels, cmap="Greens", alpha=0.5)
        ax.contour(gx, gy, dens, levels=levels[:1], colors="tab:green", linewidths=1.0, zorder=3)
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:blue", alpha=0.5, label="samples")
    ax.plot([], [], c="tab:green", label="target, 3 std")
    if modes is not None:
        ax.scatter(ref[:, 0], ref[:, 1], s=25, marker="x", c="k", label="modes")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
