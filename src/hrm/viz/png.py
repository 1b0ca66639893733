"""`hrm viz --png OUT`: one puzzle's reasoning trajectory as a static picture, for papers and READMEs.

    top row     the input, the target, and a chart of sigmoid(q_halt) and the wrong cells per ACT step
    below       the model's answer after each step; cells that changed since the previous step are
                outlined in amber, cells that differ from the target are hatched in red

Drawn with matplotlib's Agg canvas (no display needed), in the same colours as the web page
(hrm.viz.tasks). The file is written to a temporary name and renamed.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hrm.halting import Q_HALT_GT_Q_CONTINUE, says_halt
from hrm.viz.tasks import IGNORE_LABEL, TaskStyle, view_box

CHANGED = "#f5b301"
ERROR = "#e11d48"


@dataclass
class Trajectory:
    """One puzzle and the model's answer at each ACT step (K >= 1; K = 1 when only the final step is known)."""
    inputs: np.ndarray                  # (S,)
    labels: np.ndarray | None           # (S,), IGNORE_LABEL where not scored; None when the answer is unknown
    steps: np.ndarray                   # (K, S)
    q_halt: np.ndarray                  # (K,) logits
    q_continue: np.ndarray              # (K,) logits
    title: str = ""
    halt_rule: str = Q_HALT_GT_Q_CONTINUE   # the model's (hrm.halting)

    def errors(self, k: int) -> np.ndarray | None:
        if self.labels is None:
            return None
        return (self.labels != IGNORE_LABEL) & (self.steps[k] != self.labels)


def _draw_board(ax, style: TaskStyle, view: tuple[int, int, int, int], tokens: np.ndarray, panel_inches: float,
                given: np.ndarray | None = None, changed: np.ndarray | None = None, errors: np.ndarray | None = None) -> None:
    r0, c0, nr, nc = view
    crop = lambda a: None if a is None else a.reshape(style.rows, style.cols)[r0:r0 + nr, c0:c0 + nc]
    grid, given, changed, errors = crop(tokens), crop(given), crop(changed), crop(errors)
    image = np.array([[to_rgb(style.style(t).colour) for t in row] for row in grid])
    if errors is not None:          # wrong cells tinted red, as the page does
        image[errors] = 0.78 * image[errors] + 0.22 * np.array(to_rgb(ERROR))
    ax.imshow(image, interpolation="nearest", extent=(0, nc, nr, 0))
    # NOTE: collections (one artist for many lines or boxes) keep a 16-step figure quick to draw.
    thin = 0.4 if max(nr, nc) > 12 else 0.6
    box_rows, box_cols = style.box or (nr + 1, nc + 1)
    ax.hlines(np.arange(nr + 1), 0, nc, color="#333333", lw=[2.0 if i % box_rows == 0 else thin for i in range(nr + 1)])
    ax.vlines(np.arange(nc + 1), 0, nr, color="#333333", lw=[2.0 if j % box_cols == 0 else thin for j in range(nc + 1)])
    for mask, inset, colour, width in ((errors, 0.05, ERROR, 0.9), (changed, 0.1, CHANGED, 1.8)):
        if mask is not None and mask.any():
            boxes = [Rectangle((c + inset, r + inset), 1 - 2 * inset, 1 - 2 * inset) for r, c in zip(*np.nonzero(mask))]
            ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor=colour, linewidth=width))
    font = max(3.0, 0.5 * panel_inches * 72 / max(nr, nc))          # half a cell, in points
    for r in range(nr):
        for c in range(nc):
            look = style.style(grid[r, c])
            if look.text:
                ax.text(c + 0.5, r + 0.53, look.text, ha="center", va="center", fontsize=font,
                        color=ERROR if errors is not None and errors[r, c] else look.ink,
                        fontweight="bold" if given is not None and given[r, c] else "normal")
    ax.set_xlim(0, nc)
    ax.set_ylim(nr, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")


def _draw_chart(ax, trajectory: Trajectory) -> None:
    k = np.arange(1, len(trajectory.steps) + 1)
    p_halt = 1 / (1 + np.exp(-trajectory.q_halt.astype(np.float64)))
    ax.plot(k, p_halt, "o-", color="#2563eb", label="sigmoid(q_halt)")
    halts = says_halt(trajectory.halt_rule, trajectory.q_halt, trajectory.q_continue)
    if halts.any():
        ax.plot(k[halts], p_halt[halts], "s", color="#15803d", ms=8, label=trajectory.halt_rule)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("ACT step")
    ax.set_ylabel("sigmoid(q_halt)")
    ax.set_xticks(k if len(k) <= 20 else k[::max(1, len(k) // 10)])
    ax.grid(alpha=0.3)
    lines, labels = ax.get_legend_handles_labels()
    if trajectory.labels is not None:
        scored = max(1, int((trajectory.labels != IGNORE_LABEL).sum()))
        wrong = np.array([trajectory.errors(i).sum() for i in range(len(k))])
        twin = ax.twinx()
        twin.plot(k, wrong, "^-", color=ERROR, label=f"wrong cells (of {scored})")
        twin.set_ylabel("wrong cells", color=ERROR)
        twin.set_ylim(bottom=0, top=max(1, int(wrong.max())) * 1.1)
        more_lines, more_labels = twin.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    ax.legend(lines, labels, loc="center right", fontsize=8)


def draw_trajectory(style: TaskStyle, trajectory: Trajectory, out: str | Path, columns: int = 8, dpi: int = 120) -> Path:
    """Draw `trajectory` to the PNG `out`; returns the path."""
    steps = np.asarray(trajectory.steps)
    if steps.ndim != 2 or steps.shape[1] != trajectory.inputs.shape[0] or len(steps) == 0:
        raise ValueError(f"steps must be (K, {trajectory.inputs.shape[0]}) with K >= 1, got {steps.shape}")
    labels = trajectory.labels
    visible_labels = None if labels is None else np.where(labels == IGNORE_LABEL, 0, labels)
    view = view_box(style, trajectory.inputs, visible_labels)
    given = trajectory.inputs >= 2 if style.givens else None

    K = len(steps)
    columns = max(6, min(columns, K))          # at least 6: input, target, a gap, and a chart 3 panels wide
    step_rows = math.ceil(K / columns)
    aspect = view[2] / view[3]
    panel = 1.7                                 # inches per board
    fig = Figure(figsize=(columns * panel, (1 + step_rows) * (panel * max(aspect, 0.5) + 0.4) + 0.3))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + step_rows, columns, hspace=0.5, wspace=0.12)

    ax = fig.add_subplot(grid[0, 0])
    _draw_board(ax, style, view, trajectory.inputs, panel, given=given)
    ax.set_title("input", fontsize=10)
    if visible_labels is not None:
        ax = fig.add_subplot(grid[0, 1])
        _draw_board(ax, style, view, visible_labels, panel, given=given)
        ax.set_title("target", fontsize=10)
    chart = fig.add_subplot(grid[0, 3:])       # after a gap column that leaves room for its axis label
    _draw_chart(chart, trajectory)

    for k in range(K):
        ax = fig.add_subplot(grid[1 + k // columns, k % columns])
        changed = steps[k] != steps[k - 1] if k > 0 else None
        _draw_board(ax, style, view, steps[k], panel, given=given, changed=changed, errors=trajectory.errors(k))
        p = 1 / (1 + math.exp(-float(trajectory.q_halt[k])))
        stop = " · halt" if trajectory.q_halt[k] > trajectory.q_continue[k] else ""
        ax.set_title(f"step {k + 1} · p {p:.2f}{stop}" if K > 1 else f"final step · p {p:.2f}", fontsize=7.5)
    if trajectory.title:
        fig.suptitle(trajectory.title, fontsize=11, y=0.995)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp makes the file private; the PNG is not
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
