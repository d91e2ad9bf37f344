"""One generator step, in two update styles, over a gradient-sync strategy.

- :func:`alternating_step`: ``n_critic`` critic steps (plus the authors' extra ones early on and
  every N-th step), then one generator step; no critic step when ``objective.uses_critic`` is False.
- :func:`simultaneous_step`: both losses from one forward pass (``objective.simultaneous``: GRAM),
  two optimisers.

Both call the run's sync strategy (``run.sync``, chosen once by ``build_run``): :class:`LocalSync`
on one process, :class:`igm.train.distributed.DistContext` under torchrun. The strategy decides
where a non-finite loss is recorded (as computed on one process; the mean over ranks after the
gradient all-reduce under torchrun, so every rank agrees); :class:`FiniteGuard` checks them once per
generator step, so training costs one host–device sync per generator step, not one per critic step.
The strategy also decides how gradients are averaged. Both styles prefix the objective's statistics
with the pass that produced them (``critic/…`` and ``generator/…``; ``joint/…`` for the one pass of a
simultaneous step) and add ``critic_loss`` and ``generator_loss``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from igm.train import speed
from igm.nn.latent import sample_latent

__all__ = ["NonFiniteLoss", "LocalSync", "train_step", "alternating_step", "simultaneous_step"]


class NonFiniteLoss(RuntimeError):
    pass


class FiniteGuard:
    """The losses of one generator step, checked together: one host–device sync per generator step
    instead of one per critic step. :meth:`add` only records the (detached) loss; :meth:`flush`
    stacks them, tests them at once and raises :class:`NonFiniteLoss` naming the first bad one.

    A bad critic step is therefore applied before it is noticed; that is safe because the loop then
    rolls every module and optimiser back to the last good checkpoint, and :func:`train_step`
    flushes before the EMA, the schedules, logging or any checkpoint see the step."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, int, Tensor]] = []

    def add(self, loss: Tensor, what: str, step: int) -> None:
        self._pending.append((what, step, loss.detach().reshape(())))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        values = torch.stack([loss.float() for _, _, loss in pending])
        bad = ~torch.isfinite(values)
        if bool(bad.any()):  # the one sync
            i = int(bad.nonzero()[0, 0])
            what, step, _ = pending[i]
            raise NonFiniteLoss(f"non-finite {what} loss ({float(values[i])}) at generator step {step}")


class LocalSync:
    """One process: losses are recorded as computed and checked once per generator step
    (:class:`FiniteGuard`), gradients are used as computed, and a failed factorisation
    (``LinAlgError``) propagates to the loop, which rolls back."""

    is_main = True

    def __init__(self) -> None:
        self.guard = FiniteGuard()

    def losses(self, fn: Callable[..., Any], *args: Any, n_losses: int = 1) -> Any:
        """``fn(*args)``: an objective's ``(loss, stats)``, or ``(loss, ..., stats)`` with ``n_losses``."""
        return fn(*args)

    def generator_call(self, call: Any) -> Any:
        return call

    def check(self, loss: Tensor, what: str, step: int) -> None:
        self.guard.add(loss, what, step)

    def critic_grads(self, params: list[Tensor], loss: Tensor, step: int) -> None:
        pass

    def generator_grads(self, params: list[Tensor], loss: Tensor, step: int) -> None:
        pass

    def joint_grads(self, params: list[Tensor], c_loss: Tensor, g_loss: Tensor, step: int) -> None:
        pass

    # -- what the loop around the steps asks ---------------------------------------------------
    def any(self, flag: bool) -> bool:
        return flag

    def at_log(self, run: Any, sums: dict[str, Tensor]) -> dict[str, Tensor]:
        return sums

    def reseed(self, run: Any, step: int, salt: int = 0) -> None:
        pass

    def after_load(self, run: Any) -> None:
        pass


def _sample_z(run: Any, n: int) -> Tensor:
    return sample_latent(n, run.config.model.z_dim, run.config.model.z_dist, run.data_rng).to(run.device)


def _real(run: Any, n: int) -> Tensor:
    return run.data.sample(n, run.data_rng).to(run.device, non_blocking=True)


def _clip_per_tensor(params: list[Tensor], max_norm: float) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        norms = torch._foreach_norm(grads)
        factors = [torch.clamp(max_norm / (n + 1e-12), max=1.0) for n in norms]
        torch._foreach_mul_(grads, factors)


def _optimizer_step(opt: torch.optim.Optimizer, params: list[Tensor], clip: float | None,
                    cosine: bool = False) -> Tensor | None:
    """Clip (per tensor), then step. With ``cosine``: cos(Δθ, −g), the angle between the update the
    optimiser made and the steepest descent direction of the (clipped) gradient; 1 for plain SGD. The
    WGAN paper (§4.2) saw it turn negative for Adam on an unstable critic. Parameters without a
    gradient are left out. None when nothing moved or had a gradient."""
    if clip is not None:
        _clip_per_tensor(params, clip)
    if not cosine:
        opt.step()
        return None
    live = [p for p in params if p.grad is not None]
    if not live:
        opt.step()
        return None
    before = [p.detach().clone() for p in live]
    grads = [p.grad.detach().clone() for p in live]
    opt.step()
    with torch.no_grad():
        dot = sum((g * (b - p)).sum() for g, b, p in zip(grads, before, live))  # (−g)·Δθ
        step2 = sum(((p - b) ** 2).sum() for b, p in zip(before, live))
        grad2 = sum((g ** 2).sum() for g in grads)
        return dot / (step2.sqrt() * grad2.sqrt()).clamp_min(torch.finfo(torch.float32).tiny)


def _n_critic(cfg: Any, step: int) -> int:
    t = cfg.train
    extra = t.extra_critic_steps > 0 and (
        step < t.extra_critic_until or (t.extra_critic_every > 0 and step % t.extra_critic_every == 0)
    )
    return t.extra_critic_steps if extra else t.n_critic


def _trainable(module: Any) -> list[Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


def _prefixed(role: str, stats: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{role}/{k}": v for k, v in stats.items()}


def alternating_step(run: Any, g: Any, c: Any, sync: Any) -> dict[str, Tensor]:
    """Critic steps, then one generator step; returns detached stats."""
    obj, clip, bs = run.objective, run.config.optim.grad_clip, run.config.train.batch_size
    cosine, c_cos = run.config.train.update_cosine, None
    stats: dict[str, Tensor] = {}
    if obj.uses_critic:
        c_params = _trainable(c)
        n = _n_critic(run.config, run.step)
        for i in range(n):
            with torch.no_grad():
                fake = g(_sample_z(run, bs))
            c_loss, c_stats = sync.losses(obj.critic_loss, c, _real(run, bs), fake)
            sync.check(c_loss, "critic", run.step)
            run.opt_c.zero_grad(set_to_none=True)
            c_loss.backward()
            sync.critic_grads(c_params, c_loss, run.step)  # the critic is never DDP-wrapped (double backward)
            c_cos = _optimizer_step(run.opt_c, c_params, clip, cosine and i == n - 1)  # the last update's only
            obj.after_critic_step(c, c_stats)
        stats.update(_prefixed("critic", c_stats), critic_loss=c_loss.detach())
        if c_cos is not None:
            stats["critic/update_cosine"] = c_cos  # of the step's last critic update
    g_params = _trainable(g)
    g_loss, g_stats = sync.losses(obj.generator_loss, c, _real(run, bs), g(_sample_z(run, bs)))
    sync.check(g_loss, "generator", run.step)
    run.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()  # under DDP the generator's gradients are averaged here
    sync.generator_grads(g_params, g_loss, run.step)
    g_cos = _optimizer_step(run.opt_g, g_params, clip, cosine)
    stats.update(_prefixed("generator", g_stats), generator_loss=g_loss.detach())
    if g_cos is not None:
        stats["generator/update_cosine"] = g_cos
    return stats


def simultaneous_step(run: Any, g: Any, c: Any, sync: Any) -> dict[str, Tensor]:
    """Both losses from one forward pass, both optimisers stepped; returns detached stats."""
    obj, clip, bs = run.objective, run.config.optim.grad_clip, run.config.train.batch_size
    c_params, g_params = _trainable(c), _trainable(g)
    c_loss, g_loss, j_stats = sync.losses(obj.joint_loss, c, _real(run, bs), g(_sample_z(run, bs)), n_losses=2)
    sync.check(c_loss, "critic", run.step)
    sync.check(g_loss, "generator", run.step)
    c_grads = torch.autograd.grad(c_loss, c_params, retain_graph=True, allow_unused=True)
    g_grads = torch.autograd.grad(g_loss, g_params, allow_unused=True)
    for params, grads in ((c_params, c_grads), (g_params, g_grads)):
        for p, gr in zip(params, grads):
            p.grad = gr
    sync.joint_grads(c_params + g_params, c_loss, g_loss, run.step)
    _optimizer_step(run.opt_c, c_params, clip)
    obj.after_critic_step(c, j_stats)
    _optimizer_step(run.opt_g, g_params, clip)
    return {**_prefixed("joint", j_stats), "critic_loss": c_loss.detach(), "generator_loss": g_loss.detach()}


def train_step(run: Any) -> dict[str, Tensor]:
    """One generator step (with its critic steps), the EMA and the schedules. Returns detached stats."""
    sync = run.sync
    g, c = speed.forwards(run)  # the modules, or their bf16 / channels_last / compiled calls (same parameters)
    g = sync.generator_call(g)  # under torchrun: the same call inside DistributedDataParallel
    step = simultaneous_step if run.objective.simultaneous else alternating_step
    try:
        stats = step(run, g, c, sync)
    except Exception:
        sync.guard.flush()  # a non-finite loss earlier in the step is the cause (raised from here) ...
        raise  # ... else the error itself
    sync.guard.flush()  # before the EMA, the schedules, the log or a checkpoint see the step
    if run.ema is not None:
        _update_ema(run.ema, g, run.config.train.ema)
    for sched in (run.sched_g, run.sched_c):
        if sched is not None:
            sched.step()
    return stats


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    e_params, m_params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(e_params, m_params, 1.0 - decay)
    for eb, mb in zip(ema.buffers(), model.buffers()):
        eb.copy_(mb)
