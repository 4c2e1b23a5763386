"""The Adam stage's own optimiser: torch.optim.Adam's steps without its import cost."""

from __future__ import annotations

import subprocess
import sys

import torch

from breastlib.register.adam import _Adam


def test_steps_equal_torch_adam_to_the_last_bit():
    torch.manual_seed(0)
    target = torch.randn(1, 3, 6, 5, 4)
    ours = torch.nn.Parameter(torch.zeros_like(target))
    theirs = torch.nn.Parameter(torch.zeros_like(target))
    mine, reference = _Adam(ours, 0.7), torch.optim.Adam([theirs], lr=0.7)
    for _ in range(25):
        for parameter, optimiser in ((ours, mine), (theirs, reference)):
            parameter.grad = None
            ((parameter - target) ** 4).sum().backward()
            optimiser.step()
        assert torch.equal(ours, theirs)
    assert not torch.equal(ours, torch.zeros_like(ours))  # it moved


def test_a_registration_imports_no_compiler_stack_and_no_encoder_library():
    """torch.optim.Adam imports torch._dynamo (and sympy): a second of every process. A
    MIND registration needs none of the encoders' libraries, nor pandas."""
    code = (
        "import sys, numpy as np\n"
        "from breastlib.volume import Volume\n"
        "from breastlib.register import register_method\n"
        "rng = np.random.default_rng(0)\n"
        "a = Volume.from_array(rng.random((24, 24, 16), dtype=np.float32), np.eye(4))\n"
        "b = Volume.from_array(np.roll(a.array, 1, 0), np.eye(4))\n"
        "register_method(a, b, method='mind', profile='fast', device='cpu', iterations=3)\n"
        "print(sorted(m for m in ('torch._dynamo', 'sympy', 'timm', 'open_clip',\n"
        "                         'segment_anything', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]"
