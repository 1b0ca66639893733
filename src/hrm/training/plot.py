"""`hrm plot RUN_DIR`: a run's curves from its metrics.jsonl, drawn to PNG with matplotlib (no display needed)."""
from __future__ import annotations

from pathlib import Path

from hrm.training.loggers import read_metrics

# (panel title, [(metric key, label)]): a panel is drawn when any of its keys has data.
PANELS = [
    ("loss (per example)", [("train/loss", "train loss"), ("train/lm_loss", "train LM loss"),
                            ("eval/lm_loss", "eval LM loss")]),
    ("exact accuracy", [("train/exact_accuracy", "train"), ("eval/exact_accuracy", "eval")]),
    ("token accuracy", [("train/accuracy", "train"), ("eval/accuracy", "eval")]),
    ("Q-halt", [("train/q_halt_accuracy", "train accuracy"), ("eval/q_halt_accuracy", "eval accuracy")]),
    ("ACT steps per halted puzzle", [("train/steps", "train"), ("eval/steps", "eval")]),
    ("learning rate", [("train/lr", "AdamATan2 LR")]),
    ("throughput", [("train/steps_per_second", "steps / s")]),
]


def series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_run(run_dir: str | Path, output: str | Path | None = None, log_loss: bool = True) -> Path:
    """Draw every panel that has data into one PNG; returns its path (default RUN_DIR/curves.png)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir}: the metrics file has no records yet")
    panels = [(title, [(key, label, *series(records, key)) for key, label in lines])
              for title, lines in PANELS]
    panels = [(title, [line for line in lines if line[2]]) for title, lines in panels]
    panels = [p for p in panels if p[1]]
    columns = 2
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    for ax, (title, lines) in zip(axes.flat, panels):
        for key, label, steps, values in lines:
            marker = "o" if key.startswith("eval/") else None
            ax.plot(steps, values, label=label, marker=marker, markersize=3)
        if log_loss and title.startswith("loss") and all(v > 0 for *_, values in lines for v in values):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    output = Path(output) if output else run_dir / "curves.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
