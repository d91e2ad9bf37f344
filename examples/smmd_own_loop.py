"""Scaled MMD in your own PyTorch loop: fit a 2-D Gaussian mixture with a small generator."""
import torch
from torch import nn

import igm.objectives

torch.manual_seed(0)
objective = igm.objectives.get("smmd")  # Gaussian kernel σ=1, scale 1/(1 + 10·E‖∇φ‖²) on the real batch
generator = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2))
critic = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.9))
opt_c = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])


def real_batch(n=64):
    return centers[torch.randint(0, 2, (n,))] + 0.1 * torch.randn(n, 2)


for step in range(201):
    for _ in range(5):  # n_critic critic steps
        fake = generator(torch.randn(64, 8)).detach()
        loss_c, stats_c = objective.critic_loss(critic, real_batch(), fake)
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
        objective.after_critic_step(critic, stats_c)  # constraints / objective state, if any
    loss_g, stats_g = objective.generator_loss(critic, real_batch(), generator(torch.randn(64, 8)))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    if step % 100 == 0:
        print(f"step {step:3d}  smmd2 {stats_g['smmd2']:.4f}  scale {stats_g['scale']:.3f}")

samples = generator(torch.randn(1000, 8)).detach()
share_right = (samples[:, 0] > 0).float().mean()
print(f"share of samples in the right-hand mode: {share_right:.2f}")
