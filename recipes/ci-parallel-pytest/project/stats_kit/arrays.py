import numpy as np


def normalize(x):
    """Scale to [0, 1]; a constant array maps to zeros."""
    x = np.asarray(x, dtype=float)
    span = x.max() - x.min()
    return np.zeros_like(x) if span == 0 else (x - x.min()) / span


def zscores(x):
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd


def moving_average(x, window):
    if window < 1:
        raise ValueError("window must be at least 1")
    x = np.asarray(x, dtype=float)
    if window > len(x):
        return np.array([])
    c = np.cumsum(np.insert(x, 0, 0.0))
    return (c[window:] - c[:-window]) / window
