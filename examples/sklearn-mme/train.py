"""train.py OUTDIR DEPSDIR — run at image build time, inside the image.

Ten different models for the multi-model endpoint, all trained on
scikit-learn's bundled diabetes data (no download): model-K is a
LinearRegression (K even) or Ridge (K odd, alpha K/10) fitted on one tenth
of the rows (a different slice each) with a different target transform
(y * (K + 1)), so every model answers differently. Writes
  OUTDIR/model/model.joblib              model-0 (build-oci-image.sh wants a model/)
  OUTDIR/samples/artifacts/model-K.tar.gz  the ten artifacts (model.joblib each)
  OUTDIR/samples/input.csv               5 rows of 10 features, as a client sends them
  OUTDIR/samples/expected.json           {"input_csv": …, "models": {"model-K.tar.gz": [5 predictions]}}
"""
import csv
import io
import json
import os
import sys
import tarfile

import joblib
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge

N_MODELS = 10


def artifact(path, model):
    buf = io.BytesIO()
    joblib.dump(model, buf)
    data = buf.getvalue()
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))


def main():
    out = sys.argv[1]
    for d in ("model", "samples/artifacts"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    X, y = load_diabetes(return_X_y=True)
    sample = X[::97][:5]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([repr(float(v)) for v in r] for r in sample)
    input_csv = buf.getvalue()
    expected = {"input_csv": input_csv, "models": {}}
    n = len(X)
    for k in range(N_MODELS):
        rows = slice(k * n // N_MODELS, (k + 1) * n // N_MODELS)
        m = LinearRegression() if k % 2 == 0 else Ridge(alpha=k / 10.0)
        m.fit(X[rows], y[rows] * (k + 1))
        name = "model-%d.tar.gz" % k
        artifact(os.path.join(out, "samples", "artifacts", name), m)
        expected["models"][name] = [float(v) for v in m.predict(np.array(sample))]
        if k == 0:
            joblib.dump(m, os.path.join(out, "model", "model.joblib"))
    with open(os.path.join(out, "samples", "input.csv"), "w") as f:
        f.write(input_csv)
    with open(os.path.join(out, "samples", "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print("[train] sklearn-mme: %d models on %d rows each" % (N_MODELS, n // N_MODELS), file=sys.stderr)


if __name__ == "__main__":
    main()
