"""Every error reason the core can send comes from the contract's ErrorReason enum."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tandem import errors
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import CoreError

SOURCE = Path(errors.__file__).parent
GENERATED = SOURCE / "inference"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "core.md"

# Keyword arguments that carry a reason wherever the core raises or answers.
_REASON_KEYWORDS = {"reason", "code"}


def _core_modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if GENERATED not in p.parents)


def _reason_arguments() -> list[tuple[str, ast.expr]]:
    """Every ``reason=``/``code=`` argument in the core's source, with where it is."""
    found = []
    for path in _core_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg in _REASON_KEYWORDS:
                        where = f"{path.relative_to(SOURCE)}:{keyword.value.lineno}"
                        found.append((where, keyword.value))
    return found


def test_every_reason_argument_is_an_enum_value() -> None:
    arguments = _reason_arguments()
    assert arguments, "the scan found no reason arguments: it is looking in the wrong place"
    for where, value in arguments:
        assert not isinstance(value, ast.Constant), f"{where}: a literal reason {value.value!r}"
        if (
            isinstance(value, ast.Attribute)
            and isinstance(value.value, ast.Name)
            and value.value.id == "pb"
        ):
            assert value.attr.startswith("ERROR_REASON_"), f"{where}: {value.attr}"
            assert hasattr(pb, value.attr), f"{where}: {value.attr} is not generated"
            assert value.attr != "ERROR_REASON_UNSPECIFIED", where


def _core_error_classes() -> list[type[CoreError]]:
    out: list[type[CoreError]] = []
    pending: list[type[CoreError]] = [CoreError]
    while pending:
        cls = pending.pop()
        out.append(cls)
        pending.extend(cls.__subclasses__())
    return out


@pytest.mark.parametrize("cls", _core_error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_has_an_enum_reason(cls: type[CoreError]) -> None:
    assert cls.reason in pb.ErrorReason.values()
    assert cls.reason != pb.ERROR_REASON_UNSPECIFIED


def test_every_reason_has_one_json_code_derived_from_its_name() -> None:
    for name, value in pb.ErrorReason.items():
        if value == pb.ERROR_REASON_UNSPECIFIED:
            assert value not in errors.JSON_CODES
            continue
        assert errors.JSON_CODES[value] == name.removeprefix("ERROR_REASON_").lower()
    assert len(set(errors.JSON_CODES.values())) == len(errors.JSON_CODES)


def test_the_documented_codes_are_the_enum() -> None:
    """docs/core.md's error table lists exactly the codes the enum gives."""
    text = DOCS.read_text()
    section = text.split("### Errors", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    documented = {re.findall(r"`([a-z0-9_]+)`", row.rsplit("|", 2)[-2])[0] for row in rows}
    assert documented == set(errors.JSON_CODES.values())
