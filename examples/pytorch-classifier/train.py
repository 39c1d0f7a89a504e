"""train.py OUTDIR DEPSDIR — run at image build time, inside the image.

Trains the MLP (mlp.py) on DEPSDIR/sklearn-preprocess/train.csv: iris as the
sklearn-preprocess transformer outputs it (7 columns) + the species index.
Deterministic (seeded, one thread). Writes
  OUTDIR/model/model.pt          TorchScript (→ model.tar.gz)
  OUTDIR/model/classes.json      species names, feature count
  OUTDIR/samples/input.csv       15 transformed rows (what the pipeline's
                                 first step sends)
  OUTDIR/samples/expected.json   the model's probabilities for them
"""
import csv
import json
import os
import sys

import torch

from mlp import MLP


def main():
    out, deps = sys.argv[1], sys.argv[2]
    for d in ("model", "samples", "export"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    src = os.path.join(deps, "sklearn-preprocess")
    with open(os.path.join(src, "train.csv")) as f:
        rows = [r for r in csv.reader(f) if r]
    with open(os.path.join(src, "classes.json")) as f:
        meta = json.load(f)
    X = torch.tensor([[float(v) for v in r[:-1]] for r in rows], dtype=torch.float32)
    y = torch.tensor([int(r[-1]) for r in rows], dtype=torch.long)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = MLP(n_in=X.shape[1], n_out=len(meta["classes"]))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _epoch in range(300):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    scripted = torch.jit.script(model)
    scripted.save(os.path.join(out, "model", "model.pt"))
    with open(os.path.join(out, "model", "classes.json"), "w") as f:
        json.dump({"classes": meta["classes"], "n_features": int(X.shape[1]),
                   "features": meta.get("features")}, f)

    idx = list(range(0, len(rows), 10))
    with open(os.path.join(out, "samples", "input.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows[i][:-1] for i in idx)
    with torch.no_grad():
        probs = torch.softmax(scripted(X[idx]), dim=1).tolist()
    with open(os.path.join(out, "samples", "expected.json"), "w") as f:
        json.dump({"probabilities": probs, "labels": [meta["classes"][int(y[i])] for i in idx]}, f)
    print("[train] pytorch-classifier: MLP %d-16-%d, 300 epochs, loss %.4f, training accuracy %.3f"
          % (X.shape[1], len(meta["classes"]), loss.item(), acc), file=sys.stderr)


if __name__ == "__main__":
    main()
