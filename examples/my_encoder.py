"""A user's own encoder for `hares eval --encoder py:examples/my_encoder.py:make` (see README)."""

import torch
from torch import nn


class MyEncoder(nn.Module):
    """(B, N) waveforms at 16 kHz -> (B, T, 256) frames (hares averages them over T)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 256, kernel_size=400, stride=160)  # 25 ms windows, 10 ms hop

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(wav[:, None])).transpose(1, 2)  # (B, T, 256)


def make() -> nn.Module:
    return MyEncoder()  # load your weights here, e.g. model.load_state_dict(...)
