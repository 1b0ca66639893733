"""Running HRM outside PyTorch: the host-side ACT driver, ONNX and MLIR/IREE export, backend parity.

    act        the ACT loop written once; takes a step function from any backend (NumPy only)
    torch_step the PyTorch model as a step function, and the export wrapper modules
    onnx       ONNX export (one step; whole puzzle) with the dynamo exporter, and onnxruntime steps
    mlir       torch-mlir to the torch dialect / linalg-on-tensors, IREE compilation and IREE steps
    backends   every backend built from one checkpoint, with availability checks
    verify     the parity table of every backend against PyTorch
    commands   `hrm export` and `hrm verify`

Modules are imported on use: `hrm.export.act` does not pull in torch.
"""
