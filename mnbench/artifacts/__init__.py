"""The files a run measures: cached, validated exports (export), the models listing (catalog), the
user's own ONNX files and their pairs."""
