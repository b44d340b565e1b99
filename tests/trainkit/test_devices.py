"""Device choice and precision fallback, covering the CUDA/MPS branches on a CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from shared.trainkit.devices import (
    choose_device_kind,
    describe_device,
    move_to_device,
    resolve_precision,
    select_device,
)
from shared.trainkit.errors import ConfigError


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, False, "cuda")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(cuda: bool, mps: bool, expected: str) -> None:
    assert choose_device_kind("auto", cuda=cuda, mps=mps) == expected


@pytest.mark.parametrize("request_", ["cuda", "mps"])
def test_explicit_unavailable_device_raises_config_error_naming_device(request_: str) -> None:
    with pytest.raises(ConfigError, match=f"'{request_}' was requested") as caught:
        choose_device_kind(request_, cuda=False, mps=False)
    assert caught.value.details["field"] == "device"


def test_explicit_available_device_is_used() -> None:
    assert choose_device_kind("mps", cuda=True, mps=True) == "mps"
    assert choose_device_kind("cpu", cuda=True, mps=True) == "cpu"


def test_unknown_device_request_is_rejected() -> None:
    with pytest.raises(ConfigError, match="device must be one of"):
        choose_device_kind("tpu", cuda=False, mps=False)


def test_select_device_on_this_machine_returns_a_usable_device() -> None:
    device = select_device("cpu")
    assert device == torch.device("cpu")
    assert torch.zeros(1, device=select_device("auto")).device.type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize(
    ("precision", "kind", "expected", "warns"),
    [
        ("32", "mps", "32", False),
        ("bf16-mixed", "cpu", "bf16-mixed", False),
        ("bf16-mixed", "cuda", "bf16-mixed", False),
        ("16-mixed", "cuda", "16-mixed", False),
        ("16-mixed", "cpu", "32", True),
        ("16-mixed", "mps", "32", True),
        ("bf16-mixed", "mps", "32", True),
    ],
)
def test_precision_resolution(precision: str, kind: str, expected: str, warns: bool) -> None:
    resolved, warning = resolve_precision(precision, kind)
    assert resolved == expected
    assert (warning is not None) is warns


def test_describe_cpu_device() -> None:
    info = describe_device(torch.device("cpu"))
    assert info["kind"] == "cpu"
    assert info["name"]
    assert info["memory_bytes"] is None or info["memory_bytes"] > 0


def test_move_to_device_walks_nested_batches() -> None:
    x = torch.ones(2)
    batch = {"x": x, "pair": (torch.zeros(1), [torch.ones(1)]), "name": "keep"}
    moved = move_to_device(batch, torch.device("cpu"))
    assert moved["name"] == "keep"
    assert isinstance(moved["pair"], tuple)
    assert isinstance(moved["pair"][1], list)
    assert torch.equal(moved["x"], x)
