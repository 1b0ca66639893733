"""hrm: Hierarchical Reasoning Models on any hardware."""
__version__ = "0.1.0"


def __getattr__(name: str):
    # `hrm.solve` imports torch and the model only when it is first used, so `import hrm` stays light.
    if name == "solve":
        from hrm.evaluation.solve import solve
        return solve
    raise AttributeError(f"module 'hrm' has no attribute {name!r}")
