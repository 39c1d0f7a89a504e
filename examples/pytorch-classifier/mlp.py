"""mlp.py — the pytorch-classifier model: a small MLP over the 7 columns that
sklearn-preprocess produces (4 scaled measurements + 3 one-hot shapes) to
the 3 iris species. Used by train.py only: the saved model.pt is TorchScript,
so serve loads it without this file."""
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, n_in=7, n_hidden=16, n_out=3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
