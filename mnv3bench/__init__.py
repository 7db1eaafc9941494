"""mnv3bench: measure how MobileNetV3's design choices change its latency on a phone."""

__version__ = "0.1.0"
