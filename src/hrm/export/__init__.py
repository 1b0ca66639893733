"""Running the models outside PyTorch: ONNX and MLIR/IREE export, every backend, backend parity.

    torch_step   the PyTorch model as a step function, and the modules the exporters trace
    metadata     the JSON beside every export (sizes, carry init, input/output roles)
    onnx_export  ONNX export (one step; whole puzzle) with the dynamo exporter; onnxruntime steps
    mlir_export  torch-mlir to the torch dialect / linalg-on-tensors, IREE compilation, IREE steps
    backends     every backend built from one checkpoint, with availability checks
    verify       the parity table of every backend against PyTorch
    commands     `hrm export` and `hrm verify`

Every backend is a step function driven by the one ACT driver, hrm.act_driver (NumPy only, below this
package, so that the ports use it without importing the exporters). Modules are imported on use.
"""
