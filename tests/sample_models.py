"""Factories for the --module tests: a good one lives in actexport.examples; these are the bad ones."""

from __future__ import annotations


def not_a_module():
    return 3


def raises():
    raise RuntimeError("boom")


NOT_CALLABLE = 42


def returns_a_string():
    """A module whose output is not a tensor."""
    import torch
    from torch import nn

    class Talker(nn.Module):
        def forward(self, x: torch.Tensor):
            return {"text": "hello", "y": x}

    return Talker()


def nested_outputs():
    """Tuples, lists and dicts of tensors, nested: the names are their paths."""
    import torch
    from torch import nn

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b = nn.Linear(6, 3), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor, scale: torch.Tensor):
            return self.a(x), {"logits": self.b(x) * scale, "extra": [torch.tanh(x)]}

    return Nested()


def nested_inputs():
    import torch
    gen = torch.Generator().manual_seed(1)
    return torch.randn(1, 6, generator=gen), torch.full((1, 1), 2.0)


def scaled():
    """A 0-d input beside a batch, and a None among the outputs (exporters drop it)."""
    import torch
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.l = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor, t: torch.Tensor):
            return self.l(x) * t, None

    return Scaled()


def scaled_inputs():
    import torch
    return torch.randn(2, 4, generator=torch.Generator().manual_seed(2)), torch.tensor(1.5)


def batch_as_number():
    """Uses its batch size as a number: torch.export fixes that dim, which must not be called dynamic."""
    import torch
    from torch import nn

    class Counts(nn.Module):
        def forward(self, x: torch.Tensor):
            return x * float(x.shape[0])

    return Counts()


def slow():
    """Sleeps in forward after its first calls: a run that outlives its deadline."""
    import time

    import torch
    from torch import nn

    class Slow(nn.Module):
        calls = 0

        def forward(self, x: torch.Tensor):
            Slow.calls += 1
            if Slow.calls > 6:
                time.sleep(3)
            return x + 1

    return Slow()


def square_encoder_inputs():
    """Batch and sequence of the same size: only the program tells which output dim is which."""
    import torch
    ids = torch.randint(1, 100, (2, 2), generator=torch.Generator().manual_seed(6))
    return {"input_ids": ids, "padding_mask": torch.zeros(2, 2, dtype=torch.bool)}
