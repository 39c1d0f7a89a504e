"""iris_schema.py — the CSV schema of the sklearn-preprocess example, shared
by train.py (build time) and serve (run time).

A row: sepal_length, sepal_width, petal_length, petal_width (cm, numbers)
and sepal_shape (a category: wide | medium | narrow, from the sepal's
length/width ratio). No header line; one that starts with "sepal_length"
is skipped.
"""
NUMERIC = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CATEGORICAL = ["sepal_shape"]
COLUMNS = NUMERIC + CATEGORICAL
SHAPES = ["wide", "medium", "narrow"]


def sepal_shape(length, width):
    ratio = length / width
    return "wide" if ratio < 1.7 else "medium" if ratio < 2.1 else "narrow"


def output_columns():
    """Names of the transformer's output columns, in order."""
    return ["%s_scaled" % n for n in NUMERIC] + ["sepal_shape=%s" % s for s in SHAPES]
