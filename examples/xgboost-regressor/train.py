"""train.py OUTDIR DEPSDIR — run at image build time, inside the image.

Trains an XGBoost regressor on scikit-learn's bundled diabetes data (442
patients, 10 features, disease progression after a year; no download).
Deterministic (seeded, one thread). Writes
  OUTDIR/model/xgboost-model.json  the booster (→ model.tar.gz)
  OUTDIR/model/meta.json           feature names
  OUTDIR/samples/input.csv         20 rows of features
  OUTDIR/samples/targets.txt       their true targets
  OUTDIR/samples/expected.txt      the booster's predictions for them
"""
import csv
import json
import os
import sys

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_diabetes


def main():
    out = sys.argv[1]
    for d in ("model", "samples", "export"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    data = load_diabetes()
    X, y = data.data, data.target
    params = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.1,
              "subsample": 1.0, "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=150)
    booster.save_model(os.path.join(out, "model", "xgboost-model.json"))
    with open(os.path.join(out, "model", "meta.json"), "w") as f:
        json.dump({"features": list(data.feature_names), "n_features": int(X.shape[1])}, f)

    pred = booster.predict(xgb.DMatrix(X))
    mae = float(np.mean(np.abs(pred - y)))
    idx = list(range(0, len(y), 22))[:20]
    with open(os.path.join(out, "samples", "input.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([repr(float(v)) for v in X[i]] for i in idx)
    with open(os.path.join(out, "samples", "targets.txt"), "w") as f:
        f.write("".join("%r\n" % float(y[i]) for i in idx))
    with open(os.path.join(out, "samples", "expected.txt"), "w") as f:
        f.write("".join("%r\n" % float(pred[i]) for i in idx))
    print("[train] xgboost-regressor: 150 rounds, depth 3, training MAE %.2f (targets %.0f..%.0f, std %.1f)"
          % (mae, y.min(), y.max(), y.std()), file=sys.stderr)


if __name__ == "__main__":
    main()
