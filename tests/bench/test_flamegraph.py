"""bench/flamegraph.py: folded stacks in, an SVG and per-group shares out; Go's -traces parsed."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import flamegraph
import pytest

FOLDED = """\
main;serve;handle;encode 30
main;serve;handle;metrics.inc 10
worker;run;Session.run (onnxruntime/capi/x.py:1) 55
worker;run;wait 5
not a stack line
"""


def test_read_folded_keeps_every_stack_and_skips_malformed_lines() -> None:
    stacks = flamegraph.read_folded(FOLDED)
    assert len(stacks) == 4
    assert stacks[0] == (["main", "serve", "handle", "encode"], 30)
    assert sum(count for _, count in stacks) == 100


def test_each_sample_goes_to_its_innermost_matching_group() -> None:
    stacks = flamegraph.read_folded(FOLDED)
    groups = {"model": r"onnxruntime", "metrics": r"metrics", "serving": r"serve"}
    shares = flamegraph.self_shares(stacks, groups)
    # encode matches nothing, so its samples go to "serve"; metrics.inc is innermost for its own.
    assert shares == {"model": 0.55, "metrics": 0.1, "serving": 0.3, "other": 0.05}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert flamegraph.share_under(stacks, r"handle") == pytest.approx(0.4)


def test_the_svg_is_well_formed_with_one_titled_rectangle_per_wide_frame() -> None:
    stacks = flamegraph.read_folded(FOLDED)
    svg = flamegraph.render_svg(stacks, "title <with> & escapes", "sub")
    root = ET.fromstring(svg)  # raises on malformed XML (escaping included)
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    assert titles[0].startswith("all (100 samples")
    model = "Session.run (onnxruntime/capi/x.py:1) (55 samples, 55.00%)"
    assert any(t.startswith(model) for t in titles)
    # all; main > serve > handle > {encode, metrics.inc}; worker > run > {Session.run, wait}
    assert len(titles) == 10


TRACES = """\
File: httpapi.test
Type: cpu
-----------+-------------------------------------------------------
      20ms   strconv.AppendFloat (inline)
             github.com/tandem-inference/tandem/go-gateway/internal/httpapi.appendFloat32
             net/http.HandlerFunc.ServeHTTP
-----------+-------------------------------------------------------
     1.20s   runtime.mallocgc
             internal/runtime/atomic.(*Pointer[go.shape.struct { a int; b int }]).Load
-----------+-------------------------------------------------------
"""


def test_go_traces_become_folded_stacks_root_first(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout=TRACES, stderr="")

    monkeypatch.setattr(flamegraph.subprocess, "run", fake_run)
    folded = flamegraph.folded_from_pprof("go", Path("bin"), Path("prof"))
    assert flamegraph.read_folded(folded) == [
        (
            [
                "net/http.HandlerFunc.ServeHTTP",
                "gateway/httpapi.appendFloat32",
                "strconv.AppendFloat",
            ],
            20,
        ),
        # ';' inside a generic shape must not split the frame.
        (
            [
                "internal/runtime/atomic.(*Pointer[go.shape.struct { a int, b int }]).Load",
                "runtime.mallocgc",
            ],
            1200,
        ),
    ]
