"""Exponential moving average of the weights, used for validation and inference.

PAPER: spec §8: decay 0.999, updated every optimizer step.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of a module whose floating-point parameters and buffers track the live ones.

    ema <- decay * ema + (1 - decay) * live, after every optimizer step.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_state, live_state = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in ema_state.items() if v.is_floating_point()]
        # lerp: ema + (1 - decay) * (live - ema) == decay * ema + (1 - decay) * live
        torch._foreach_lerp_(
            [ema_state[k] for k in floats], [live_state[k] for k in floats], 1.0 - self.decay
        )
        for key, value in ema_state.items():
            if not value.is_floating_point():
                value.copy_(live_state[key])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
