import numpy as np
import pytest

from stats_kit import moving_average, normalize, zscores


def test_normalize_range():
    out = normalize([3, 7, 5, 11])
    assert out.min() == 0.0 and out.max() == 1.0


def test_normalize_constant_is_zeros():
    assert np.array_equal(normalize([4, 4, 4]), np.zeros(3))


def test_zscores_mean_zero_unit_sd():
    z = zscores(np.arange(10))
    assert abs(z.mean()) < 1e-12
    assert z.std() == pytest.approx(1.0)


def test_moving_average_values():
    assert np.allclose(moving_average([1, 2, 3, 4, 5], 2), [1.5, 2.5, 3.5, 4.5])


def test_moving_average_window_too_long():
    assert moving_average([1, 2], 5).size == 0


def test_moving_average_bad_window():
    with pytest.raises(ValueError, match="at least 1"):
        moving_average([1, 2, 3], 0)


@pytest.mark.parametrize("n", [16, 64, 256])
def test_fft_roundtrip(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    assert np.allclose(np.fft.ifft(np.fft.fft(x)).real, x)


def test_linear_solve():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([9.0, 8.0])
    assert np.allclose(np.linalg.solve(a, b), [2.0, 3.0])
