"""The comparison of `hrm report` (hrm.evaluation.compare) as a Markdown table, a CSV file and a PNG bar chart.

Each takes the groups (hrm.evaluation.compare.Group: a label, entries with seeds and paths, `values(key)`,
`mean_std(key)`) in order. The ± is the sample standard deviation (n - 1); with one run it is n/a. The files
are written atomically (hrm.files): a killed report leaves the old file or the whole new one.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from hrm.files import atomic_write, atomic_write_text

# (key, column title, is a percentage): the table's columns, in order.
COLUMNS = [("exact_accuracy", "exact accuracy (%)", True), ("accuracy", "token accuracy (%)", True),
           ("q_halt_accuracy", "Q-halt accuracy (%)", True), ("steps_trained", "steps trained", False),
           ("parameters", "parameters", False)]


def canonical(value: Any) -> str:
    """One spelling per value, to compare and group by (dicts in key order)."""
    return json.dumps(value, sort_keys=True, default=str)


def shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cell(group, key: str, percent: bool) -> str:
    """A percentage as 87.50 ± 1.23; a count (steps, parameters) alone when every run has the same."""
    mean, std = group.mean_std(key)
    if mean is None:
        return "n/a"
    if percent:
        return f"{100 * mean:.2f} ± " + (f"{100 * std:.2f}" if std is not None else "n/a")
    if len(set(group.values(key))) == 1:
        return f"{mean:,.0f}"
    return f"{mean:,.1f} ± {std:,.1f}"


def markdown(groups: list) -> str:
    """The comparison table, with a line on the protocol and what ± means, and notes on doubtful groups."""
    head = ["group", "seeds"] + [title for _, title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        seeds = ",".join("?" if s is None else str(s) for s in g.seeds)
        row = [g.label.replace("|", "\\|"), f"{len(g.entries)} ({seeds})"] + [_cell(g, k, p) for k, _, p in COLUMNS]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("mean ± sample standard deviation (n − 1) over each group's runs (n/a for one run); "
                 "held-out figures of the evaluation each entry records.")
    protocols = {canonical(g.protocol) for g in groups}
    if len(protocols) == 1:
        lines.append("protocol: " + ", ".join(f"{k}={shown(v)[:12] if k.endswith('hash') and v else shown(v)}"
                                              for k, v in groups[0].protocol.items()))
    else:
        lines.append("mix_protocols=true: the groups were evaluated under different protocols (see their labels)")
    for g in groups:
        known = [s for s in g.seeds if s is not None]
        if len(set(known)) < len(known):
            lines.append(f"note: {g.label} holds the same seed more than once ({', '.join(str(e.path) for e in g.entries)})")
        if len(set(g.values("steps_trained"))) > 1:
            lines.append(f"note: {g.label}: its runs were evaluated after different numbers of steps (one unfinished?)")
    return "\n".join(lines)


def write_csv(groups: list, path: Path) -> Path:
    """One row per group: the mean and sample std of each column (empty where unknown), the seeds and paths."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["group", "runs", "seeds"] + [f"{k}_{s}" for k, _, _ in COLUMNS for s in ("mean", "std")]
                    + ["protocol", "paths"])
    for g in groups:
        stats = [v for k, _, _ in COLUMNS for v in g.mean_std(k)]
        writer.writerow([g.label, len(g.entries), " ".join("" if s is None else str(s) for s in g.seeds)]
                        + ["" if v is None else repr(v) for v in stats]
                        + [canonical(g.protocol), " ".join(str(e.path) for e in g.entries)])
    return atomic_write_text(path, buffer.getvalue())


def write_png(groups: list, path: Path) -> Path:
    """Bars of the mean exact and token accuracy per group, error bars one sample std, each run a dot."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [(key, title) for key, title, _ in COLUMNS[:2] if any(g.values(key) for g in groups)]
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(groups) + 2), 4.0))
    for i, (key, title) in enumerate(columns):
        means = [100 * (g.mean_std(key)[0] or 0) for g in groups]
        stds = [100 * (g.mean_std(key)[1] or 0) for g in groups]
        offset = (i - (len(columns) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=stds, capsize=4, label=title.replace(" (%)", ""))
        for j, g in enumerate(groups):
            values = [100 * v for v in g.values(key)]
            ax.plot([x[j] + offset] * len(values), values, "k.", markersize=4)
    slanted = len(groups) > 2
    ax.set_xticks(x, [g.label for g in groups], rotation=20 if slanted else 0, ha="right" if slanted else "center",
                  fontsize=8)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("mean ± sample std (n − 1) over seeds; dots: runs", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path
