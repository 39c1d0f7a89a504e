#!/usr/bin/python3
"""walkthrough.py — the xgboost-regressor image on berth, the SageMaker way
(boto3, unchanged): create_model → create_endpoint_config → create_endpoint
→ waiter → invoke_endpoint → clean up.

    make framework-images          # builds the image (cached in /var/cache/berth)
    /usr/bin/python3 examples/xgboost-regressor/walkthrough.py [--endpoint-url URL]

--image-dir defaults to the last build (oci:/var/cache/berth/images/
xgboost-regressor/oci:latest, symlink resolved); --rootfs runs the unpacked
root filesystem instead. Exits non-zero if the answer is wrong.
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

NAME = "xgboost-regressor"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint-url", default=os.environ.get("BERTH_URL", "http://127.0.0.1:8080"))
    p.add_argument("--image-dir", default="/var/cache/berth/images/" + NAME)
    p.add_argument("--rootfs", action="store_true", help="Image = the unpacked rootfs, not oci:")
    p.add_argument("--wait-s", type=int, default=180)
    return p.parse_args()


def main():
    a = parse_args()
    d = os.path.realpath(a.image_dir)
    image = os.path.join(d, "rootfs") if a.rootfs else "oci:%s/oci:latest" % d
    kw = dict(endpoint_url=a.endpoint_url, region_name="us-east-1",
              config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    sm, rt = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
    name = "%s-%s" % (NAME, uuid.uuid4().hex[:6])

    t0 = time.monotonic()
    sm.create_model(ModelName=name,
                    ExecutionRoleArn="arn:aws:iam::000000000000:role/walkthrough",
                    PrimaryContainer={"Image": image, "ModelDataUrl": "file://%s/model.tar.gz" % d})
    try:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name,
            "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        try:
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            try:
                sm.get_waiter("endpoint_in_service").wait(
                    EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": a.wait_s})
                print("endpoint %s InService after %.1fs (image %s)" % (name, time.monotonic() - t0, image))
                with open(os.path.join(d, "samples", "input.csv"), "rb") as f:
                    body = f.read()
                with open(os.path.join(d, "samples", "targets.txt")) as f:
                    targets = [float(v) for v in f.read().split()]
                with open(os.path.join(d, "samples", "expected.txt")) as f:
                    expected = [float(v) for v in f.read().split()]
                resp = rt.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
                preds = [float(v) for v in resp["Body"].read().split()]
                for p, y in list(zip(preds, targets))[:5]:
                    print("  predicted %6.1f   true %5.1f" % (p, y))
                mae = sum(abs(p - y) for p, y in zip(preds, targets)) / len(targets)
                print("%d predictions (%s), mean absolute error %.1f" % (len(preds), resp["ContentType"], mae))
                assert len(preds) == len(targets), "one prediction a row"
                assert all(abs(p - e) < 1e-3 for p, e in zip(preds, expected)), "not the build's predictions"
                resp = rt.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                          Accept="application/json",
                                          Body=json.dumps({"instances": [[0.0] * 10]}))
                print("JSON in and out: %s" % resp["Body"].read().decode())
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
