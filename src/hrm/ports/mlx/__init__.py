"""HRM in MLX (`mlx.nn`, `mx.fast`): inference, a training step, and weight conversion.

On Linux it runs on the CPU with `pip install "mlx[cpu]"`; on macOS it is the Apple-silicon path.
"""
