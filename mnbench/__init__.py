"""mnbench: does depthwise-separable convolution make MobileNet faster on *this* hardware?"""

__version__ = "0.1.0"
