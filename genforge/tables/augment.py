"""The table pieces of ``genforge augment``: reading the tables, the target, conditional top-up, the learners.

The app's job (:mod:`genforge.app.augment`) asks the table modality for a :class:`TableKit` and never looks
inside a DataFrame itself. Learners: scikit-learn's HistGradientBoosting (``gb``, native categories) and a
logistic regression on one-hot categories and standardised numbers (``logreg``; a ridge regression for a
numeric target); both see the same features as train-on-synthetic (:mod:`genforge.tables.metrics.utility`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.core.errors import ConfigError, DataError
from genforge.tables.data.readers import load_table
from genforge.tables.data.schema import infer_schema
from genforge.tables.metrics.attacks import overlap_share
from genforge.tables.metrics.evaluate import sdv_metadata_from_schema
from genforge.tables.metrics.utility import _is_regression, _tstr_frames
from genforge.tables.metrics.values import _labels, _numeric

LEARNERS = ("gb", "logreg")


class TableKit:
    """``genforge augment`` on tables; ``target`` is the column the learners predict."""

    learners = LEARNERS
    noun = "rows"

    def __init__(self, target: str | None):
        if not target:
            raise ConfigError("augment needs --target COLUMN: the column the downstream model predicts")
        self.target = target

    def adopt(self, train: pd.DataFrame) -> None:
        """Check the target against the training table and learn its kind (classes or numbers)."""
        target = self.target
        if target not in train.columns:
            raise ConfigError(f"--target {target!r} is not a column of the training table; columns: "
                              f"{', '.join(map(str, train.columns))}")
        self.cols = sdv_metadata_from_schema(infer_schema(train))["columns"]
        if target not in self.cols or self.cols[target]["sdtype"] == "id":
            raise ConfigError(f"--target {target!r} is an id or text column; pick a categorical or numeric column")
        self.regression = _is_regression(train, target, self.cols[target])
        self.reference = train

    @staticmethod
    def load(path: str, encoding: str | None = None) -> pd.DataFrame:
        """A table file (or a built-in name) as a DataFrame."""
        return load_table(path, encoding=encoding or "utf-8")[0]

    def size(self, data: pd.DataFrame) -> int:
        """Rows."""
        return len(data)

    def subset(self, data: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
        """The rows at ``idx``."""
        return data.iloc[idx].reset_index(drop=True)

    def concat(self, parts: list[pd.DataFrame]) -> pd.DataFrame:
        """The tables one after the other."""
        return pd.concat(parts, ignore_index=True)

    def labels(self, data: pd.DataFrame) -> np.ndarray:
        """The target of every row (text labels, or numbers for a regression target)."""
        s = data[self.target]
        return (_numeric(s, self.cols[self.target]) if self.regression else _labels(s)).to_numpy()

    def check_model(self, model, data: pd.DataFrame) -> None:
        """Refuse a generator that cannot condition on the target (the balanced arm samples by class)."""
        if self.regression:
            return
        model.prepare(data.head(min(len(data), 200)))
        value = data[self.target].dropna().iloc[0]
        try:
            model.normalise_where({self.target: value})
        except ConfigError as err:
            raise ConfigError(f"augment --target {self.target}: '{model.name}' cannot sample rows of one class "
                              f"({err}); pick a model that conditions on it (gaussian-copula, ctgan, tvae)") from None

    def sample(self, model, n: int, seed: int, label=None) -> pd.DataFrame:
        """``n`` generated rows (all of class ``label`` when given)."""
        where = {self.target: self._value(label)} if label is not None else None
        return model.sample(n, where=where, seed=seed)

    def _value(self, label):
        for v in self.reference[self.target].dropna().unique():
            if str(v) == str(label):
                return v
        return label

    def overlap(self, train: pd.DataFrame, test: pd.DataFrame) -> float:
        """The share of test rows identical to a training row."""
        return overlap_share(train, test, self.cols)

    def fit_predict(self, learner: str, train: pd.DataFrame, test: pd.DataFrame, seed: int):
        """``(predictions, {class: probability} or None)`` of ``learner`` trained on ``train``, on ``test``."""
        keep = train[pd.notna(self.labels(train))]
        if len(keep) == 0:
            raise DataError(f"no training row has a value in the target {self.target!r}")
        x, x_test = _tstr_frames([keep, test], self.cols, self.target, self.reference)
        y = self.labels(keep)
        if not self.regression and len(set(y)) < 2:
            return np.full(len(test), y[0], dtype=object), {y[0]: np.ones(len(test))}
        model = _learner(learner, self.regression, x, seed)
        model.fit(x, y.astype(float) if self.regression else y)
        if self.regression:
            return model.predict(x_test), None
        proba = model.predict_proba(x_test)
        return model.classes_[proba.argmax(1)], {c: proba[:, i] for i, c in enumerate(model.classes_)}


def _learner(name: str, regression: bool, x: pd.DataFrame, seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if name == "gb":
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return cls(categorical_features="from_dtype", random_state=seed)
    cats = [c for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in x.columns if c not in cats]
    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), nums),
                              ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                    OneHotEncoder(handle_unknown="ignore")), cats)])
    head = Ridge() if regression else LogisticRegression(max_iter=500)
    return make_pipeline(prep, head)
