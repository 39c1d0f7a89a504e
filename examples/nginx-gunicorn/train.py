"""train.py OUTDIR DEPSDIR — run at image build time, inside the image.

Nothing to learn: writes the model artifact the app reads and one sample
  OUTDIR/model/greeting.txt     (→ model.tar.gz)
  OUTDIR/samples/input.txt      a request body
  OUTDIR/samples/expected.json  the answer's greeting and body
"""
import json
import os
import sys


def main():
    out = sys.argv[1]
    for d in ("model", "samples", "export"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    greeting = "hello from nginx and gunicorn"
    with open(os.path.join(out, "model", "greeting.txt"), "w") as f:
        f.write(greeting + "\n")
    with open(os.path.join(out, "samples", "input.txt"), "w") as f:
        f.write("ping through nginx")
    with open(os.path.join(out, "samples", "expected.json"), "w") as f:
        json.dump({"greeting": greeting, "body": "ping through nginx"}, f)


if __name__ == "__main__":
    main()
