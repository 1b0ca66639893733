"""`hrm check-reference`: replaying fixtures recorded from the original code (hrm: HRM ACT v1; trm: TRM).

It replays training procedures (optimiser steps, weight averaging), so it sits above hrm.training.
"""
