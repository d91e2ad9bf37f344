"""Suite-wide settings: the tests use small tensors, for which one thread is fastest."""

import torch

torch.set_num_threads(1)
