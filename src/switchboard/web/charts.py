"""Charts as server-rendered SVG (no script, nothing fetched): calls per day as bars with the
answered share inside, and a rate (answer rate, conversion) as a line over the same days."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from switchboard.store.usage import UsageRow

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 760, 220, 40, 36, 14, 44


def daily_chart(rows: Sequence[UsageRow], *, title: str = "calls per day") -> str:
    if not rows:
        return '<p class="muted">No calls in this range.</p>'
    n = len(rows)
    top = max(1, max(r.calls for r in rows))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = min(plot_w / n, 60.0)
    bar = max(2.0, step * 0.7)
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'role="img" aria-label="{escape(title)}" fill="#374151">',
             f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#94a3b8"/>',
             f'<text x="{PAD_L - 6}" y="{PAD_T + 8}" text-anchor="end">{top}</text>',
             f'<text x="{PAD_L - 6}" y="{H - PAD_B}" text-anchor="end">0</text>',
             f'<text x="{W - PAD_R + 6}" y="{PAD_T + 8}">100%</text>',
             f'<text x="{W - PAD_R + 6}" y="{H - PAD_B}">0%</text>']
    points = []
    label_every = max(1, n // 10)
    for i, r in enumerate(rows):
        x = PAD_L + i * step + (step - bar) / 2
        h_all = plot_h * r.calls / top
        h_ans = plot_h * r.answered / top
        parts.append(f'<rect x="{x:.1f}" y="{H - PAD_B - h_all:.1f}" width="{bar:.1f}" height="{h_all:.1f}" '
                     f'fill="#c7d2fe"><title>{escape(r.key)}: {r.calls} calls</title></rect>')
        parts.append(f'<rect x="{x:.1f}" y="{H - PAD_B - h_ans:.1f}" width="{bar:.1f}" height="{h_ans:.1f}" '
                     f'fill="#4f46e5" data-day="{escape(r.key)}"><title>{escape(r.key)}: {r.answered} answered</title></rect>')
        if r.answer_rate is not None:
            points.append(f"{x + bar / 2:.1f},{H - PAD_B - plot_h * r.answer_rate:.1f}")
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{H - PAD_B + 14}" text-anchor="middle">{escape(r.key[5:])}</text>')
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#ea580c" stroke-width="2"/>')
    parts.append(f'<text x="{PAD_L}" y="{H - 4}" fill="#4f46e5">■ answered</text>'
                 f'<text x="{PAD_L + 90}" y="{H - 4}" fill="#818cf8">■ dialed</text>'
                 f'<text x="{PAD_L + 170}" y="{H - 4}" fill="#ea580c">— answer rate</text></svg>')
    return "".join(parts)


__all__ = ["daily_chart"]
