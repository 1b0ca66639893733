"""Running HRM outside PyTorch: the host-side ACT driver, ONNX and MLIR/IREE export, backend parity.

    act          the ACT loop written once; takes a step function from any backend (NumPy only)
    torch_step   the PyTorch model as a step function, and the modules the exporters trace
    metadata     the JSON beside every export (sizes, carry init, input/output roles)
    onnx_export  ONNX export (one step; whole puzzle) with the dynamo exporter; onnxruntime steps
    mlir_export  torch-mlir to the torch dialect / linalg-on-tensors, IREE compilation, IREE steps
    backends     every backend built from one checkpoint, with availability checks
    verify       the parity table of every backend against PyTorch
    commands     `hrm export` and `hrm verify`

Modules are imported on use: `hrm.export.act` does not pull in torch.
"""
