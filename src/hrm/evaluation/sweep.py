"""A sweep of depth and breadth at test time: a grid of (D, B) cells in one call (semantics §11.3).

    hrm eval checkpoint=runs/x steps=1,2,4,8,16 samples=1,4,16 noise=0.3

For each breadth B, one evaluation runs every puzzle's B trajectories (hrm.evaluation.breadth) to the
deepest depth D_max with every step's outputs kept (the predictions, q_halt and the residual of the answer
latent), and every depth D <= D_max is scored from that run: under the fixed rule the answer after step D is
the answer of a run of D steps, since a step does not depend on the steps that come after it. The grid
costs sum over B of (B * D_max) step applications instead of sum over its cells of (B * D), and in a cell
every selector picks from the same trajectories.

A cell (D, B) holds:

    exact accuracy   per label-free selector (breadth.SELECTORS), each selecting from step D's outputs
    one trajectory   the exact accuracy of trajectory 0 alone (what breadth is compared with; with tta, the
                     original version's first)
    oracle pass@B    any of the B trajectories exactly right. It reads the labels: an upper bound, not a result
    forward passes   ACT steps x trajectories per puzzle, D * B (x K with tta=K: every breadth is K versions
                     of B trajectories each, mapped back to the original frame before selection)
    seconds          the ACT loop's wall time up to the end of step D in the B run, summed over batches

sweep.json holds every cell and the protocol (hrm.evaluation.report.protocol, as results.json's);
sweep_depth.png, sweep_breadth.png and sweep_compute.png draw the exact accuracy against depth, breadth and
forward passes per puzzle (colour: the breadth or depth; line style: the selector; dotted: the oracle).

NOTE: with noise_every_step the generator draws once per step, so from its second batch on a D_max run has
drawn other numbers than a run of D steps would have: the cell is then a run of D steps with other (equally
distributed) noise. Without it every draw comes before the first step and the cell is that run exactly.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from hrm.act_driver import ACTResult
from hrm.evaluation.breadth import SELECTORS, breadth_runner, select
from hrm.evaluation.loop import evaluate, ran_compiled
from hrm.evaluation.metrics import exact


def cell_counts(result: ACTResult, samples: int, depths: list[int], labels: np.ndarray,
                counted: np.ndarray) -> dict[str, float]:
    """The counted puzzles right in each cell of one batch: `result` holds the P puzzles' `samples`
    trajectories (P * samples rows, puzzle-major, at least max(depths) steps), `labels` (P, S) their labels."""
    P = len(labels)
    counts = {}
    for d in depths:
        answers = result.step_predictions[:, d - 1].reshape(P, samples, -1)
        right = np.stack([exact(answers[:, n], labels) for n in range(samples)], 1) & counted[:, None]   # (P, N)
        for how in SELECTORS:
            counts[f"sweep/{d}/{how}"] = float(right[np.arange(P), select(result, samples, how, depth=d)].sum())
        counts[f"sweep/{d}/one"] = float(right[:, 0].sum())
        counts[f"sweep/{d}/oracle"] = float(right.any(1).sum())
    return counts


class BreadthRun:
    """One breadth's run: its runner (every trajectory to the deepest depth) and the scorer of its cells,
    which evaluation.loop.evaluate calls right after the runner, with that batch's labels. With tta=K (an
    `augmenter`), each puzzle's trajectories are its K versions x `samples` (hrm.evaluation.tta)."""

    def __init__(self, head, samples: int, depths: list[int], config, compile: bool = False, augmenter=None,
                 rows_per_forward: int | None = None):
        self.trajectories_per_puzzle, self.depths = config.tta * samples, depths
        self.trajectories: ACTResult | None = None
        self.step_seconds = np.zeros(max(depths))
        self.runner = breadth_runner(head, samples, config.noise, config.select, config.seed, config.noise_every_step,
                                     steps=max(depths), compile=compile, init=config.init, keep=self._keep,
                                     augmenter=augmenter, versions=config.tta, rows_per_forward=rows_per_forward)

    def _keep(self, result: ACTResult) -> None:
        self.trajectories = result
        self.step_seconds += result.step_seconds

    def score(self, out: ACTResult, labels: np.ndarray, counted: np.ndarray) -> dict[str, float]:
        return cell_counts(self.trajectories, self.trajectories_per_puzzle, self.depths, labels, counted)


def run_sweep(head, dataset, config, depths: list[int], device="cpu", compile: bool = False,
              rows: np.ndarray | None = None, progress: bool = False, augmenter=None) -> dict[str, Any]:
    """Every (depth, breadth) cell of config.breadths() x `depths` on a test-mode dataset (see the module
    docstring); `rows` evaluates a subset (evaluation.loop.subset_rows); with config.tta > 1 (and the puzzle
    family's `augmenter`) every breadth is that many versions x samples. Returns {"count", "cells", "runs"}."""
    from hrm.evaluation.breadth import default_rows_per_forward

    cells, runs, count = [], [], 0
    versions = config.tta
    rows_per_forward = default_rows_per_forward(device, config.rows_per_forward)
    for samples in config.breadths():
        run = BreadthRun(head, samples, depths, config, compile, augmenter, rows_per_forward)
        start = time.perf_counter()
        outputs = evaluate(head, dataset, device=device, progress=progress, runner=run.runner, keep_rows=False,
                           rows=rows, score=run.score)
        runs.append({"samples": samples, "depth": max(depths), "seconds": time.perf_counter() - start,
                     "compiled": ran_compiled(run.runner)})
        sums, count = outputs.metric_sums, int(outputs.metric_sums.get("count", 0))

        def share(d, name):
            return sums[f"sweep/{d}/{name}"] / count if count else float("nan")
        for d in depths:
            seconds = float(run.step_seconds[d - 1])
            cells.append({"depth": d, "samples": samples, "versions": versions,
                          "forward_passes_per_puzzle": d * samples * versions,
                          "exact_accuracy": {how: share(d, how) for how in SELECTORS},
                          "one_trajectory_exact_accuracy": share(d, "one"),
                          # NOTE: an oracle: it looks at the labels. An upper bound, never the headline.
                          "oracle_pass_at_samples": share(d, "oracle"),
                          "seconds": seconds, "seconds_per_puzzle": seconds / outputs.num_examples})
    return {"count": count, "cells": cells, "runs": runs}


# ----------------------------------------------------------------------------------------------------
# The table, sweep.json and the curves

SHORT = {"vote": "vote", "vote+residual": "vote+res", "q": "q", "residual": "residual"}


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def sweep_lines(sweep: dict[str, Any]) -> list[str]:
    """The printed table: a row per cell, exact accuracy in percent."""
    head = (f"  {'depth':>5} {'breadth':>7} {'passes':>6}  " + " ".join(f"{SHORT[h]:>8}" for h in SELECTORS)
            + f" {'one traj':>8} | {'oracle@B':>8} {'seconds':>8} {'ms/puzzle':>9}")
    lines = [f"sweep       {sweep['count']} puzzles, exact accuracy (%) by the label-free selectors; the oracle "
             "pass@B looks at the labels (an upper bound, not a result); passes = ACT steps x trajectories per puzzle",
             head]
    versions = max((c.get("versions", 1) for c in sweep["cells"]), default=1)
    if versions > 1:
        lines.insert(1, f"            breadth = trajectories per version, {versions} versions per puzzle (tta): "
                        "oracle@B and the selectors range over versions x breadth")
    for c in sweep["cells"]:
        lines.append(f"  {c['depth']:>5} {c['samples']:>7} {c['forward_passes_per_puzzle']:>6}  "
                     + " ".join(f"{_pct(c['exact_accuracy'][h]):>8}" for h in SELECTORS)
                     + f" {_pct(c['one_trajectory_exact_accuracy']):>8} | {_pct(c['oracle_pass_at_samples']):>8}"
                     + f" {c['seconds']:8.2f} {1000 * c['seconds_per_puzzle']:9.3f}")
    return lines


def write_sweep(out_dir: Path, sweep: dict[str, Any]) -> list[Path]:
    """sweep.json and the three PNG curves, into `out_dir`; returns their paths."""
    from hrm.evaluation.arc import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", sweep, indent=1)
    return [out_dir / "sweep.json"] + plot_sweep(out_dir, sweep["cells"])


def plot_sweep(out_dir: Path, cells: list[dict[str, Any]]) -> list[Path]:
    """Exact accuracy against depth (a line per breadth), breadth (per depth) and forward passes (per breadth):
    a panel per selector, the oracle dotted in the same colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    depths = sorted({c["depth"] for c in cells})
    breadths = sorted({c["samples"] for c in cells})
    cell = {(c["depth"], c["samples"]): c for c in cells}
    written = []
    for name, x_label, groups, key, x_of in (
            ("depth", "depth (ACT steps per puzzle)", breadths, "B", lambda c: c["depth"]),
            ("breadth", "breadth (trajectories per puzzle)", depths, "D", lambda c: c["samples"]),
            ("compute", "forward passes per puzzle (ACT steps x trajectories)", breadths, "B",
             lambda c: c["forward_passes_per_puzzle"])):
        fig = Figure(figsize=(10, 7))
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2, sharex=True, sharey=True).flat
        xs = sorted({x_of(c) for c in cells})
        for ax, how in zip(axes, SELECTORS):
            for i, g in enumerate(groups):
                line = [cell[(d, g) if key == "B" else (g, d)] for d in (depths if key == "B" else breadths)]
                colour = f"C{i % 10}"
                ax.plot([x_of(c) for c in line], [c["exact_accuracy"][how] for c in line], marker="o", markersize=4,
                        color=colour, label=f"{key}={g}")
                if any(c["samples"] * c.get("versions", 1) > 1 for c in line):
                    ax.plot([x_of(c) for c in line], [c["oracle_pass_at_samples"] for c in line], linestyle=":",
                            marker="x", linewidth=0.8, color=colour, label=f"{key}={g} oracle pass@B")
            if len(xs) > 1 and xs[-1] / xs[0] > 4:
                ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.minorticks_off()
            ax.set_title(f"select={how}", fontsize=10)
            ax.grid(alpha=0.3)
        fig.supxlabel(x_label)
        fig.supylabel("exact accuracy")
        fig.suptitle(f"exact accuracy against {name}; dotted: the oracle pass@B (reads the labels: an upper bound)",
                     fontsize=10)
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(0.83, 0.5))
        fig.subplots_adjust(left=0.08, right=0.82, bottom=0.1, top=0.9, wspace=0.08, hspace=0.2)  # (tight_layout: 3x slower)
        path = out_dir / f"sweep_{name}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written
