"""int8: the quantized file and its settings (quantize), how far its outputs moved (accuracy)."""
