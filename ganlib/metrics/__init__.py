"""Metrics: mode coverage on 2-D mixtures, exact W1, Fréchet distance, JS on a grid."""
from ganlib.metrics.divergence import js_divergence
from ganlib.metrics.frechet import feature_stats, frechet_distance, frechet_distance_from_stats
from ganlib.metrics.modes import mode_stats
from ganlib.metrics.transport import exact_w1

__all__ = ["js_divergence", "feature_stats", "frechet_distance", "frechet_distance_from_stats", "mode_stats",
           "exact_w1"]
