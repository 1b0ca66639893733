"""The wheel holds every file hrm reads at run time: a user who `pip install`s it (not editable, no
repository beside it) still finds the training presets and the visualiser's page."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

USE_THE_INSTALLED_PACKAGE = textwrap.dedent("""
    import hrm
    from hrm.training.config import PRESETS, load_config, preset_path
    from hrm.viz.server import STATIC_DIR

    print(hrm.__file__)
    names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
    print(" ".join(names))
    for name in names:
        load_config(preset_path(name))
    for page in ["index.html", "app.js", "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm"]:
        assert (STATIC_DIR / page).is_file(), page
""")


def checkout(into: Path) -> Path:
    """The repository's files as a fresh clone has them (with this change), without build leftovers."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source, target = REPO / name, into / name
        if source.is_symlink() or source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return into


def test_the_wheel_carries_the_presets_and_the_visualiser(tmp_path):
    source = checkout(tmp_path / "checkout")
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("hrm-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)

    # Run from a folder without configs/, with the installed copy first on the path.
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", USE_THE_INSTALLED_PACKAGE], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    where, names = result.stdout.splitlines()[:2]
    assert Path(where).is_relative_to(site), where
    assert set(names.split()) == {p.stem for p in (REPO / "configs").glob("*.yaml")}
