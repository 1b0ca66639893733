"""HRM inference in plain NumPy, float32 or float64: the reference the other backends are judged by."""
from hrm.ports.numpy.model import Arch, NumpyHRM, evaluate, load_hrm_weights

__all__ = ["Arch", "NumpyHRM", "evaluate", "load_hrm_weights"]
