"""Objectives: one module per loss family, all reachable by short name.

>>> import igm.objectives as O
>>> obj = O.get("smmd")
>>> loss, stats = obj.critic_loss(critic, real, fake)
"""

from igm.objectives.base import Objective, WeightClip, get, names, register, registry

__all__ = ["Objective", "WeightClip", "get", "names", "register", "registry"]

# Importing the family modules registers them.
from igm.objectives import gan, gcmmd, gram, lgan, mmd_gan, mmd_net, smmd, sobolev, wgan  # noqa: E402,F401
