"""Flame graphs as SVG from folded stacks, and the share of samples under named frames.

Folded stacks are one line per distinct stack, ``root;caller;...;leaf count``:
what py-spy writes with ``--format raw`` and what ``folded_from_pprof`` makes
of Go's CPU profiles. One renderer draws the core's and the gateway's
profiles, so the pages compare like with like. Standard library only.
"""

from __future__ import annotations

import html
import re
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WIDTH = 1200
ROW = 16
FONT = 11
CHAR_PX = 6.2  # average width of a FONT px monospace character
MIN_PX = 1.0  # narrower frames are left out of the drawing (still counted)


@dataclass
class _Node:
    name: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def read_folded(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _tree(stacks: Iterable[tuple[Sequence[str], int]]) -> _Node:
    root = _Node("all")
    for frames, count in stacks:
        root.count += count
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, _Node(frame))
            node.count += count
    return root


def _colour(name: str) -> str:
    """Warm colours, stable per function name; Python frames reddish, native ones orange."""
    h = zlib.crc32(name.encode())
    python = ".py" in name
    red = 205 + h % 50
    green = (h >> 8) % (110 if python else 180)
    blue = (h >> 16) % 55
    return f"rgb({red},{green},{blue})"


def render_svg(stacks: list[tuple[list[str], int]], title: str, subtitle: str = "") -> str:
    """A flame graph (root at the bottom), one frame per rectangle, titles on hover."""
    root = _tree(stacks)
    depth = _depth(root)
    top_margin = 44
    height = top_margin + (depth + 1) * ROW + 8
    scale = (WIDTH - 20) / max(root.count, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="{FONT}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fdfdf6"/>',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" fill="#555">{html.escape(subtitle)}</text>',
    ]

    def draw(node: _Node, x: float, level: int) -> None:
        w = node.count * scale
        if w < MIN_PX:
            return
        y = height - 8 - (level + 1) * ROW
        share = node.count / max(root.count, 1) * 100
        label = html.escape(f"{node.name} ({node.count} samples, {share:.2f}%)")
        parts.append(
            f'<g><title>{label}</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" '
            f'height="{ROW - 1}" fill="{_colour(node.name)}" rx="1"/>'
        )
        chars = int((w - 4) / CHAR_PX)
        if chars >= 3:
            text = node.name if len(node.name) <= chars else node.name[: chars - 2] + ".."
            parts.append(f'<text x="{x + 2:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>')
        parts.append("</g>")
        child_x = x
        for child in sorted(node.children.values(), key=lambda n: n.name):
            draw(child, child_x, level + 1)
            child_x += child.count * scale

    draw(root, 10, 0)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def share_under(stacks: list[tuple[list[str], int]], pattern: str) -> float:
    """Share of all samples whose stack has a frame matching ``pattern`` (regex)."""
    matcher = re.compile(pattern)
    total = sum(count for _, count in stacks)
    hit = sum(count for frames, count in stacks if any(matcher.search(f) for f in frames))
    return hit / total if total else 0.0


def self_shares(stacks: list[tuple[list[str], int]], groups: dict[str, str]) -> dict[str, float]:
    """Each sample charged to one group: the innermost frame that matches a group's
    pattern decides (so the shares add up to 1); "other" when none matches."""
    matchers = [(name, re.compile(pattern)) for name, pattern in groups.items()]
    totals = dict.fromkeys([*groups, "other"], 0)
    for frames, count in stacks:
        totals[_innermost(frames, matchers)] += count
    total = sum(totals.values())
    return {name: round(n / total, 3) if total else 0.0 for name, n in totals.items()}


def _innermost(frames: Sequence[str], matchers: list[tuple[str, re.Pattern[str]]]) -> str:
    for frame in reversed(frames):
        for name, matcher in matchers:
            if matcher.search(frame):
                return name
    return "other"


def folded_from_pprof(go: str, binary: Path, profile: Path) -> str:
    """Folded stacks from a Go CPU profile (``go tool pprof -traces``; no graphviz needed)."""
    text = subprocess.run(
        [go, "tool", "pprof", "-traces", str(binary), str(profile)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = []
    for block in text.split("-----------+-")[1:]:
        rows = [_frame(row) for row in block.splitlines()[1:] if row.strip()]
        if not rows:
            continue
        weight, _, leaf = rows[0].partition(" ")
        if not leaf:
            continue
        samples = _pprof_duration_ms(weight)
        frames = [leaf.strip(), *rows[1:]]  # leaf first
        if samples > 0:
            lines.append(";".join(reversed(frames)) + f" {samples}")
    return "\n".join(lines) + "\n"


def _frame(row: str) -> str:
    """One -traces row without its '(inline)' mark, module paths shortened."""
    row = row.strip().removesuffix("(inline)").strip()
    # ';' separates frames in folded stacks; Go's generic shapes contain it.
    return row.replace(GO_MODULE, "gateway/").replace(";", ",")


GO_MODULE = "github.com/tandem-inference/tandem/go-gateway/internal/"


def _pprof_duration_ms(text: str) -> int:
    """'10ms' -> 10, '1.20s' -> 1200 (sample weights of -traces output)."""
    units = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}
    for unit in ("ns", "us", "µs", "ms", "s"):
        if text.endswith(unit):
            try:
                return round(float(text[: -len(unit)]) * units[unit])
            except ValueError:
                return 0
    return 0


def write(path: Path, folded: str, title: str, subtitle: str = "") -> list[tuple[list[str], int]]:
    stacks = read_folded(folded)
    path.write_text(render_svg(stacks, title, subtitle))
    return stacks
