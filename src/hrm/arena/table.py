"""The arena's report, from the finished entries' JSONs alone: OUT/arena.md and OUT/arena.png.

One table per task, one row per entrant: held-out exact accuracy as mean ± standard deviation over the seeds
(the sample standard deviation, n - 1; a single seed shows no ±), under the standard protocol and under the
test-time setting, with the steps trained, the parameters, the forward passes (ACT steps x trajectories) and
block applications per puzzle, and the seconds per training step. Above the tables: the machine, the budget,
the threads and the protocol, so that the fairness of the comparison can be read off the report itself;
below them, each entrant's hyper-parameters.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_entries(out: Path, tasks, entrants, seeds) -> dict[tuple[str, str], list[dict]]:
    """(task, entrant) -> its finished entries, in seed order (entries not yet run are left out)."""
    from hrm.arena.run import entry_path

    found = {}
    for task in tasks:
        for entrant in entrants:
            paths = [entry_path(out, task.name, entrant.label, s) for s in seeds]
            entries = [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.is_file()]
            if entries:
                found[(task.name, entrant.label)] = entries
    return found


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for one value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def percent(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.1f}%" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}%"


def count(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:,.0f}" if std is None else f"{mean:,.0f} ± {std:,.0f}"


COLUMNS = ["entrant", "parameters", "seeds", "steps trained", "s/step", "warm-up s", "held-out exact", "fwd/puzzle",
           "blocks/puzzle", "held-out exact, test-time setting", "fwd/puzzle, test-time setting"]


def row(entries: list[dict]) -> list[str]:
    first = entries[0]
    speeds = [e["seconds_per_step"] for e in entries if e["seconds_per_step"] is not None]
    tts = [e["tts"] for e in entries if e.get("tts")]
    return [first["entrant"], f"{first['parameters']:,}", str(len(entries)), count([e["steps_trained"] for e in entries]),
            f"{np.mean(speeds):.3f}" if speeds else "-", f"{np.mean([e['seconds_to_first_log'] for e in entries]):.0f}",
            percent([e["standard"]["exact_accuracy"] for e in entries]),
            str(first["standard"]["forward_passes_per_puzzle"]), f"{first['standard']['block_applications_per_puzzle']:,}",
            percent([t["exact_accuracy"] for t in tts]) if tts else "-",
            str(tts[0]["forward_passes_per_puzzle"]) if tts else "-"]


def markdown(found: dict[tuple[str, str], list[dict]], tasks) -> str:
    entries = [e for group in found.values() for e in group]
    if not entries:
        return "# Arena\n\nNo entry has finished yet.\n"
    settings = entries[0]["settings"]
    machines = sorted({f"{e['machine']['cpu']} ({e['machine']['cores']} cores visible), torch {e['machine']['torch']}"
                       for e in entries})
    tts = " ".join(settings["tts_words"]) if settings["tts"] is not None else None
    threads = f"{settings['threads']} torch thread" + ("" if settings["threads"] == 1 else "s")
    lines = ["# Arena", "",
             f"Every entry trained for {settings['minutes']:g} min of wall-clock time (compilation included, data "
             f"building and evaluation excluded) on the CPU with {threads}, on the same data for every entrant and "
             "seed.",
             "", "Machine: " + "; ".join(machines) + ".", "",
             "Standard protocol: " + entries[0]["standard"]["protocol"] + ".",
             *(["", f"Test-time setting ({tts}): " + next(e["tts"]["protocol"] for e in entries if e.get("tts"))
                + ". No labels are used to pick the answer."] if tts else []),
             "", "Held-out exact accuracy (every cell right) is the mean ± sample standard deviation over the seeds; "
                 "fwd/puzzle counts ACT steps x trajectories, blocks/puzzle the transformer blocks they apply; "
                 "s/step is measured after the first log, warm-up s is the time to it (the trainer's start, "
                 "compilation, the first log_interval steps), both inside the budget; parameters leave out the "
                 "puzzle-embedding table."]
    if settings["overrides"]:
        lines += ["", "Overrides for every entrant: `" + " ".join(settings["overrides"]) + "`."]
    for task in tasks:
        groups = [g for (t, _), g in found.items() if t == task.name]
        if not groups:
            continue
        lines += ["", f"## {task.title}", "", f"`{task.name}`: {groups[0][0]['data']}.", "",
                  "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row(g)) + " |" for g in groups]
    lines += ["", "## Hyper-parameters", ""]
    seen = set()
    for group in found.values():
        first = group[0]
        if first["entrant"] in seen:
            continue
        seen.add(first["entrant"])
        listed = ", ".join(f"{k} {v}" for k, v in first["hyper_parameters"].items())
        lines.append(f"- **{first['entrant']}** ({first['source']}): {listed}")
    return "\n".join(lines) + "\n"


def plot(found: dict[tuple[str, str], list[dict]], tasks, path: Path) -> Path:
    """Held-out exact accuracy (the curve's first puzzles) against minutes of training, a panel per task,
    a colour per entrant, a line per seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hrm.files import atomic_write

    shown = [t for t in tasks if any(k[0] == t.name for k in found)]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(6 * max(1, len(shown)), 4), squeeze=False)
    for ax, task in zip(axes.flat, shown):
        for colour, ((name, entrant), group) in enumerate((k, g) for k, g in found.items() if k[0] == task.name):
            for i, entry in enumerate(group):
                curve = entry["curve"]
                ax.plot([p["seconds"] / 60 for p in curve], [100 * p["exact_accuracy"] for p in curve],
                        color=f"C{colour}", marker="o", markersize=3, alpha=0.8, label=entrant if i == 0 else None)
        settings = next(iter(found.values()))[0]["settings"]
        ax.axvline(settings["minutes"], color="gray", linestyle="--", linewidth=1, label="budget")
        examples = settings["curve_examples"]
        ax.set_title(f"{task.name}: first {examples} held-out puzzles", fontsize=10)
        ax.set_xlabel("minutes of training")
        ax.set_ylabel("held-out exact accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def write_report(out: Path, tasks, entrants, seeds) -> list[Path]:
    from hrm.files import atomic_write_text

    found = load_entries(out, tasks, entrants, seeds)
    written = [atomic_write_text(out / "arena.md", markdown(found, tasks))]
    if found:
        written.append(plot(found, tasks, out / "arena.png"))
    return written
