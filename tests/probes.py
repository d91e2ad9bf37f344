"""Probe layers for tests that check what a loss does to the critic's graph."""

from __future__ import annotations

import torch
from torch import nn


class OnceDifferentiable(torch.autograd.Function):
    """Identity whose backward refuses to build a graph (``create_graph=True``, i.e. a gradient that
    is to be differentiated again). ``once_differentiable`` is not enough: batched input gradients
    (``is_grads_batched``, used for GCMMD's Jacobians) skip its check."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            raise RuntimeError("double backward through this layer")
        return grad


class Once(nn.Module):
    """A layer that makes any double backward through it raise ``RuntimeError``."""

    def forward(self, x):
        return OnceDifferentiable.apply(x)
