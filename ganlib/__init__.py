"""ganlib: the tested PyTorch library behind the GAN Course notebooks.

Layers, lowest first (arrows point one way):
runtime, checkpoint -> data -> losses / layers -> models -> train -> metrics -> viz / widgets.
"""
from ganlib.runtime import by_scale, describe, device, scale, seed_everything

__version__ = "0.1.0"
__all__ = ["by_scale", "describe", "device", "scale", "seed_everything", "__version__"]
