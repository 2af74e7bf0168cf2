import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, r2_score

from stats_kit import fit_classifier, fit_regressor, split


@pytest.fixture(scope="module")
def data():
    return split()


def test_split_sizes(data):
    X_train, X_test, y_train, y_test = data
    assert len(X_train) == 150 and len(X_test) == 50


def test_split_is_stratified(data):
    _, _, y_train, y_test = data
    assert abs(y_train.mean() - y_test.mean()) < 0.05


def test_classifier_beats_chance(data):
    X_train, X_test, y_train, y_test = data
    model = fit_classifier(X_train, y_train)
    assert accuracy_score(y_test, model.predict(X_test)) > 0.75


def test_classifier_probabilities_sum_to_one(data):
    X_train, X_test, y_train, _ = data
    p = fit_classifier(X_train, y_train).predict_proba(X_test)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_regressor_exact_without_noise():
    model, X, y = fit_regressor()
    assert r2_score(y, model.predict(X)) == pytest.approx(1.0)


def test_regressor_noise_lowers_r2():
    model, X, y = fit_regressor(noise=50.0, seed=1)
    assert 0.0 < r2_score(y, model.predict(X)) < 0.999


def test_kmeans_finds_two_blobs():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.3, (30, 2)), rng.normal(5, 0.3, (30, 2))])
    labels = KMeans(n_clusters=2, n_init=10, random_state=0).fit_predict(X)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[-1]
