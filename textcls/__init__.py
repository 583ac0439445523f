"""textcls: fine-tune transformer encoders for text classification with PyTorch Lightning."""

__version__ = "0.1.0"
