"""The models outside PyTorch: a NumPy reference (numpy/) and an MLX port (mlx/), each a step function of the
one ACT driver (hrm.act_driver), each tested for agreement with PyTorch."""
from __future__ import annotations

# The architectures a port serves, where it does not serve every registered one (the NumPy port serves all;
# MLX trains HRM only, hrm.ports.mlx.train).
SERVES = {"mlx": ("hrm_act_v1", "trm")}


def unsupported(name: str, architecture: str) -> str | None:
    """Why backend `name` cannot run architecture `architecture`, or None if it can."""
    served = SERVES.get(name)
    if served is not None and architecture not in served:
        return f"the {name} port serves {', '.join(served)} only, not {architecture}"
    return None
