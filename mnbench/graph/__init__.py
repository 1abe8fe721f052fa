"""What an ONNX graph costs (cost), what its inputs are fed (inputs), and which of its nodes a runtime's
kernels computed (kernels, attribution, readback)."""
