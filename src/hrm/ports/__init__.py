"""HRM outside PyTorch: a NumPy reference (numpy/) and an MLX port (mlx/)."""
