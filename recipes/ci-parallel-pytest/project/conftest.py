# The project root: pytest (rootdir conftest, prepend import mode) puts it on sys.path so the
# tests import stats_kit as an installed package would be.
