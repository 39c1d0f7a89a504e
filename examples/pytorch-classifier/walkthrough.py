#!/usr/bin/python3
"""walkthrough.py — the pytorch-classifier image on berth, the SageMaker way
(boto3, unchanged): create_model → create_endpoint_config → create_endpoint
→ waiter → invoke_endpoint → clean up.

    make framework-images          # builds the images (cached in /var/cache/berth)
    /usr/bin/python3 examples/pytorch-classifier/walkthrough.py [--endpoint-url URL] [--pipeline]

Alone, the model takes the 7 columns sklearn-preprocess outputs. With
--pipeline the model is a Serial inference pipeline [sklearn-preprocess,
pytorch-classifier]: raw iris CSV in, species probabilities out.
--image-dir defaults to the last build (oci:/var/cache/berth/images/
pytorch-classifier/oci:latest, symlink resolved); --rootfs runs the unpacked
root filesystems instead. Exits non-zero if the answer is wrong.
Calls are signed with a key of berthd's credentials file, found where boto3
looks: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the file itself as a
profile (AWS_SHARED_CREDENTIALS_FILE=/etc/berth/credentials AWS_PROFILE=admin).
"""
import argparse
import json
import os
import sys
import time
import uuid

import boto3
from botocore.config import Config

NAME = "pytorch-classifier"
CACHE = "/var/cache/berth/images/"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint-url", default=os.environ.get("BERTH_URL", "http://127.0.0.1:8080"))
    p.add_argument("--image-dir", default=CACHE + NAME)
    p.add_argument("--sklearn-image-dir", default=CACHE + "sklearn-preprocess")
    p.add_argument("--pipeline", action="store_true", help="Serial [sklearn-preprocess, pytorch-classifier]")
    p.add_argument("--rootfs", action="store_true", help="Image = the unpacked rootfs, not oci:")
    p.add_argument("--wait-s", type=int, default=180)
    return p.parse_args()


def container(d, hostname, rootfs):
    d = os.path.realpath(d)
    return {"ContainerHostname": hostname,
            "Image": os.path.join(d, "rootfs") if rootfs else "oci:%s/oci:latest" % d,
            "ModelDataUrl": "file://%s/model.tar.gz" % d}


def main():
    a = parse_args()
    kw = dict(endpoint_url=a.endpoint_url, region_name="us-east-1",
              config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    sm, rt = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
    name = "%s-%s" % (NAME, uuid.uuid4().hex[:6])
    torch_c = container(a.image_dir, "classifier", a.rootfs)
    if a.pipeline:
        pre = container(a.sklearn_image_dir, "preprocess", a.rootfs)
        model = {"Containers": [pre, torch_c], "InferenceExecutionConfig": {"Mode": "Serial"}}
        sample = os.path.join(os.path.realpath(a.sklearn_image_dir), "samples", "input.csv")
        labels_file = os.path.join(os.path.realpath(a.sklearn_image_dir), "samples", "labels.txt")
    else:
        model = {"PrimaryContainer": torch_c}
        sample = os.path.join(os.path.realpath(a.image_dir), "samples", "input.csv")
        labels_file = None

    t0 = time.monotonic()
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/walkthrough", **model)
    try:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name,
            "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        try:
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            try:
                sm.get_waiter("endpoint_in_service").wait(
                    EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": a.wait_s})
                print("endpoint %s InService after %.1fs (%s)"
                      % (name, time.monotonic() - t0, "Serial pipeline" if a.pipeline else torch_c["Image"]))
                with open(sample, "rb") as f:
                    body = f.read()
                resp = rt.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                          Accept="application/json", Body=body)
                preds = json.loads(resp["Body"].read())["predictions"]
                for p in preds[:3]:
                    print("  %-10s %s" % (p["label"], ["%.3f" % x for x in p["probabilities"]]))
                print("%d predictions (%s)" % (len(preds), resp["ResponseMetadata"]["HTTPHeaders"].get(
                    "server-timing", "")))
                assert len(preds) == body.count(b"\n"), "one prediction a row"
                assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in preds), "probabilities sum to 1"
                if labels_file:
                    with open(labels_file) as f:
                        labels = f.read().split()
                    right = sum(p["label"] == y for p, y in zip(preds, labels))
                    print("species right: %d/%d" % (right, len(labels)))
                    assert right >= len(labels) - 2, "too many wrong species"
                resp = rt.invoke_endpoint(EndpointName=name, ContentType="text/csv", Accept="text/csv",
                                          Body=body.split(b"\n")[0] + b"\n")
                print("Accept: text/csv: %s" % resp["Body"].read().decode().strip())
            finally:
                sm.delete_endpoint(EndpointName=name)
                wait_gone(sm, name)
        finally:
            sm.delete_endpoint_config(EndpointConfigName=name)
    finally:
        sm.delete_model(ModelName=name)
    print("ok: cleaned up %s" % name)


def wait_gone(sm, name, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError:
            return
        time.sleep(0.2)
    raise SystemExit("endpoint %s still there after %ds" % (name, timeout))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        sys.exit("walkthrough failed: %s" % e)
