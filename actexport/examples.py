"""Small models built from catalog activations, for `--module` (and its tests).

    actexport verify --module actexport.examples:mlp --input-shape 4,32
"""

from __future__ import annotations

import torch
from torch import nn


def mlp() -> nn.Module:
    """A 32 -> 64 -> 32 -> 10 MLP with GELU, SiLU and LogSoftmax, seeded (the same weights every call)."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32), nn.SiLU(), nn.Linear(32, 10),
                          nn.LogSoftmax(dim=-1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model


def _seeded(model: nn.Module, seed: int, scale: float = 0.2) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model


def logsigmoid_mlp() -> nn.Module:
    """8 -> 16 -> 4 with LogSigmoid and Softplus: ONNX writes LogSigmoid as Log(Sigmoid(x)), which is
    -inf where sigmoid underflows (x < ~-88 in float32) although log_sigmoid(x) is about x there."""
    return _seeded(nn.Sequential(nn.Linear(8, 16), nn.LogSigmoid(), nn.Linear(16, 4), nn.Softplus()), 1)


def bn_cnn() -> nn.Module:
    """A small BatchNorm CNN with running statistics like a trained network's (not the identity)."""
    gen = torch.Generator().manual_seed(2)
    layers: list[nn.Module] = []
    channels = [3, 16, 32, 32]
    for a, b in zip(channels, channels[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / (9 * m.in_channels)) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.1)
                m.bias.zero_()
    return realistic_batchnorm(model, gen)


def realistic_batchnorm(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """BatchNorm scales, shifts and running statistics like a trained network's: at their defaults
    every BatchNorm is nearly the identity, which hides what a fused or folded one gets wrong."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.5 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen) * 2)
    return model


def image_inputs() -> torch.Tensor:
    """A batch of 2 images, 3 x 32 x 32, values of normalised pixels."""
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def tiny_output_cnn() -> nn.Module:
    """bn_cnn whose classifier is initialised as random-init networks often leave it: outputs ~1e-9."""
    model = bn_cnn()
    with torch.no_grad():
        model[-1].weight.mul_(1e-8)
    return model


class TinyEncoder(nn.Module):
    """Token ids and a padding mask in, a dict out: an embedding and one transformer encoder layer."""

    def __init__(self, vocab: int = 100, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.encoder = nn.TransformerEncoderLayer(width, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, 3)

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(self.embed(input_ids), src_key_padding_mask=padding_mask)
        keep = (~padding_mask).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1)
        return {"last_hidden_state": h, "logits": self.head(pooled)}


def tiny_encoder() -> nn.Module:
    torch.manual_seed(4)
    return TinyEncoder()


def tiny_encoder_inputs() -> dict[str, torch.Tensor]:
    """Two sequences of 8 token ids, the second padded after 5 tokens."""
    ids = torch.randint(1, 100, (2, 8), generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[1, 5:] = True
    return {"input_ids": ids, "padding_mask": mask}
