"""kvision: Keras 3 layers and models for patch, mixer and modern-ConvNet
vision papers, on the TensorFlow, JAX and PyTorch backends alike."""

__version__ = "0.1.0"
