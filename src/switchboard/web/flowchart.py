"""A flow as an SVG diagram, drawn on the server: one box per step in file order, straight arrows
for the usual "next", arcs on the right for every other jump (branches, retries, failures), each
labelled with the field that makes it. No script, no layout engine: readable for IVR flows of a
few dozen steps."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from switchboard.flows.schema import Flow

BOX_W, BOX_H, GAP, LEFT, TOP, LANE = 230, 40, 22, 10, 10, 16
COLORS = {"entry": "#dcfce7", "hangup": "#fee2e2", "disconnect": "#fee2e2", "transfer_to_operator": "#fef3c7",
          "converse": "#ede9fe", "set_result": "#f1f5f9"}


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str


def edges_of(flow: Flow) -> list[Edge]:
    out: list[Edge] = []
    for step in flow.steps.values():
        for path, target in step.targets():
            out.append(Edge(step.step, target, ".".join(str(p) for p in path)))
    return out


def flow_svg(flow: Flow, *, title: str = "flow", current: str | None = None) -> str:
    names = list(flow.steps)
    row = {name: i for i, name in enumerate(names)}
    edges = [e for e in edges_of(flow) if e.target in row]
    straight = [e for e in edges if row[e.target] == row[e.source] + 1 and e.label == "next"]
    arcs = sorted((e for e in edges if e not in straight), key=lambda e: abs(row[e.target] - row[e.source]))
    lanes: list[list[tuple[int, int]]] = []
    lane_of: dict[int, int] = {}
    for i, e in enumerate(arcs):
        lo, hi = sorted((row[e.source], row[e.target]))
        for n, taken in enumerate(lanes):
            if all(hi < a or lo > b for a, b in taken):
                taken.append((lo, hi))
                lane_of[i] = n
                break
        else:
            lanes.append([(lo, hi)])
            lane_of[i] = len(lanes) - 1
    width = LEFT + BOX_W + 30 + LANE * (len(lanes) + 1) + 120
    height = TOP + len(names) * (BOX_H + GAP) + 10

    def y_mid(name: str) -> float:
        return TOP + row[name] * (BOX_H + GAP) + BOX_H / 2

    parts = [f'<svg class="flow" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>']
    for e in straight:
        x = LEFT + BOX_W / 2
        y1 = TOP + row[e.source] * (BOX_H + GAP) + BOX_H
        parts.append(f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y1 + GAP - 2}" stroke="#64748b" '
                     f'marker-end="url(#arrow)" data-edge="{escape(e.source)}->{escape(e.target)}"/>')
    for i, e in enumerate(arcs):
        x0 = LEFT + BOX_W
        bulge = x0 + 24 + LANE * lane_of[i]
        ya, yb = y_mid(e.source) - 6, y_mid(e.target) + 6
        if e.source == e.target:
            yb = ya + 12
        parts.append(f'<path d="M {x0} {ya} C {bulge} {ya}, {bulge} {yb}, {x0 + 2} {yb}" fill="none" '
                     f'stroke="#94a3b8" marker-end="url(#arrow)" data-edge="{escape(e.source)}->{escape(e.target)}"/>')
        parts.append(f'<text x="{bulge + 3}" y="{(ya + yb) / 2 + 4}" fill="#475569">{escape(e.label)}</text>')
    for name, step in flow.steps.items():
        y = TOP + row[name] * (BOX_H + GAP)
        fill = "#fde68a" if name == current else COLORS.get(step.type, "#e0e7ff")
        parts.append(f'<g data-step="{escape(name)}"><rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{BOX_H}" '
                     f'rx="6" fill="{fill}" stroke="#64748b"/>'
                     f'<text x="{LEFT + 8}" y="{y + 16}" font-weight="600">{escape(name)}</text>'
                     f'<text x="{LEFT + 8}" y="{y + 32}" fill="#475569">{escape(step.type)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["Edge", "edges_of", "flow_svg"]
