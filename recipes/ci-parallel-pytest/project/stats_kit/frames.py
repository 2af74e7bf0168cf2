import pandas as pd


def monthly_totals(df, date_col="date", value_col="amount"):
    """Sum of value_col per calendar month, indexed by 'YYYY-MM'."""
    months = pd.to_datetime(df[date_col]).dt.strftime("%Y-%m")
    return df.groupby(months)[value_col].sum().rename_axis("month")


def top_n(df, col, n):
    return df.nlargest(n, col).reset_index(drop=True)


def wide_to_long(df, id_col):
    out = df.melt(id_vars=[id_col], var_name="metric", value_name="value")
    return out.sort_values([id_col, "metric"]).reset_index(drop=True)
