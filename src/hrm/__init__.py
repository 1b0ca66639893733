"""hrm: Hierarchical Reasoning Models on any hardware."""
__version__ = "0.1.0"
