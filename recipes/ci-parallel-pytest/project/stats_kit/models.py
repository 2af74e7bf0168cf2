from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def split(n=200, seed=0, test_size=0.25):
    X, y = make_classification(n_samples=n, n_features=6, n_informative=4, random_state=seed)
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


def fit_classifier(X, y):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def fit_regressor(n=100, seed=0, noise=0.0):
    X, y = make_regression(n_samples=n, n_features=3, noise=noise, random_state=seed)
    return LinearRegression().fit(X, y), X, y
