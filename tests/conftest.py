"""Fixtures shared across the test packages."""

import pytest


@pytest.fixture()
def fresh_accelerator():
    """accelerate keeps one process-wide state; each training run of a test starts its own (one torch thread)."""
    import torch
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    torch.set_num_threads(1)
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
