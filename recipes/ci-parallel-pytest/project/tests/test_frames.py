import pandas as pd
import pytest

from stats_kit import monthly_totals, top_n, wide_to_long


@pytest.fixture
def sales():
    return pd.DataFrame({
        "date": ["2024-01-05", "2024-01-20", "2024-02-03", "2024-03-15", "2024-03-30"],
        "amount": [10.0, 5.5, 7.25, 1.0, 2.0],
        "region": ["n", "s", "n", "e", "s"],
    })


def test_monthly_totals(sales):
    t = monthly_totals(sales)
    assert t.to_dict() == {"2024-01": 15.5, "2024-02": 7.25, "2024-03": 3.0}


def test_monthly_totals_index_name(sales):
    assert monthly_totals(sales).index.name == "month"


def test_top_n(sales):
    assert top_n(sales, "amount", 2)["amount"].tolist() == [10.0, 7.25]


def test_wide_to_long_shape():
    wide = pd.DataFrame({"id": [1, 2], "a": [1, 2], "b": [3, 4]})
    long = wide_to_long(wide, "id")
    assert long.shape == (4, 3)
    assert long["metric"].tolist() == ["a", "b", "a", "b"]


def test_groupby_mean(sales):
    assert sales.groupby("region")["amount"].mean()["s"] == pytest.approx(3.75)


def test_merge_keeps_left_rows(sales):
    regions = pd.DataFrame({"region": ["n", "s"], "name": ["north", "south"]})
    merged = sales.merge(regions, on="region", how="left")
    assert len(merged) == len(sales)
    assert merged["name"].isna().sum() == 1


def test_pivot_table(sales):
    p = sales.pivot_table(index="region", values="amount", aggfunc="count")
    assert p.loc["n", "amount"] == 2


def test_rolling_sum():
    s = pd.Series([1, 2, 3, 4])
    assert s.rolling(2).sum().dropna().tolist() == [3.0, 5.0, 7.0]
