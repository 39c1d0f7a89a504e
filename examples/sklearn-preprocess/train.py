"""train.py OUTDIR DEPSDIR — run at image build time, inside the image.

Fits the preprocessing step on scikit-learn's bundled iris data (no
download): a ColumnTransformer with StandardScaler on the four numeric
columns and OneHotEncoder on sepal_shape. Writes
  OUTDIR/model/model.joblib       the fitted transformer (→ model.tar.gz)
  OUTDIR/samples/input.csv        15 raw rows, as a client sends them
  OUTDIR/samples/labels.txt       their species
  OUTDIR/samples/expected.csv     the transformer's answer for them
  OUTDIR/export/train.csv         all 150 rows transformed, + species index
  OUTDIR/export/classes.json      species names (pytorch-classifier trains on these)
"""
import csv
import json
import os
import sys

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import iris_schema as schema


def main():
    out = sys.argv[1]
    for d in ("model", "samples", "export"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    iris = load_iris()
    rows = [list(map(float, x)) + [schema.sepal_shape(x[0], x[1])] for x in iris.data]
    X = np.array(rows, dtype=object)
    ct = ColumnTransformer([
        ("num", StandardScaler(), [0, 1, 2, 3]),
        ("cat", OneHotEncoder(categories=[schema.SHAPES], handle_unknown="ignore", sparse_output=False), [4]),
    ])
    Xt = ct.fit_transform(X)
    joblib.dump(ct, os.path.join(out, "model", "model.joblib"))

    with open(os.path.join(out, "export", "train.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for xt, y in zip(Xt, iris.target):
            w.writerow([repr(float(v)) for v in xt] + [int(y)])
    with open(os.path.join(out, "export", "classes.json"), "w") as f:
        json.dump({"classes": list(iris.target_names), "features": schema.output_columns()}, f)

    idx = list(range(0, 150, 10))
    with open(os.path.join(out, "samples", "input.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows[i] for i in idx)
    with open(os.path.join(out, "samples", "labels.txt"), "w") as f:
        f.write("".join(iris.target_names[iris.target[i]] + "\n" for i in idx))
    with open(os.path.join(out, "samples", "expected.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([repr(float(v)) for v in Xt[i]] for i in idx)
    print("[train] sklearn-preprocess: ColumnTransformer fitted on %d rows -> %d columns %s"
          % (len(rows), Xt.shape[1], schema.output_columns()), file=sys.stderr)


if __name__ == "__main__":
    main()
