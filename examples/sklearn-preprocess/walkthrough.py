#!/usr/bin/python3
"""walkthrough.py — the sklearn-preprocess image on berth, the SageMaker way
(boto3, unchanged): create_model → create_endpoint_config → create_endpoint
→ waiter → invoke_endpoint → clean up.

    make framework-images          # builds the image (cached in /var/cache/berth)
    /usr/bin/python3 examples/sklearn-preprocess/walkthrough.py [--endpoint-url URL]

--image defaults to the last build's OCI layout (oci:/var/cache/berth/images/
sklearn-preprocess/oci:latest, symlink resolved); pass --rootfs to run its
unpacked root filesystem instead. Exits non-zero if the answer is wrong.
Calls are signed with a key of berthd's credentials file, found where boto3
looks: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the file itself as a
profile (AWS_SHARED_CREDENTIALS_FILE=/etc/berth/credentials AWS_PROFILE=admin).
"""
import argparse
import csv
import io
import json
import os
import sys
import time
import uuid

import boto3
from botocore.config import Config

NAME = "sklearn-preprocess"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint-url", default=os.environ.get("BERTH_URL", "http://127.0.0.1:8080"))
    p.add_argument("--image-dir", default="/var/cache/berth/images/" + NAME,
                   help="the build's directory (oci/, rootfs/, model.tar.gz, samples/)")
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
                resp = rt.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
                got = [[float(v) for v in r] for r in csv.reader(io.StringIO(resp["Body"].read().decode())) if r]
                print("text/csv in, %s out: %d rows x %d columns, first %s"
                      % (resp["ContentType"], len(got), len(got[0]), got[0]))
                with open(os.path.join(d, "samples", "expected.csv")) as f:
                    want = [[float(v) for v in r] for r in csv.reader(f) if r]
                assert len(got) == len(want) and all(
                    abs(x - y) < 1e-9 for g, w in zip(got, want) for x, y in zip(g, w)), "unexpected answer"

                resp = rt.invoke_endpoint(EndpointName=name, ContentType="text/csv", Accept="application/json",
                                          Body=b"5.1,3.5,1.4,0.2,wide\n6.3,2.5,5.0,1.9,narrow\n")
                doc = json.loads(resp["Body"].read())
                print("Accept: application/json: columns %s\n  %s" % (doc["columns"], doc["instances"]))
                assert len(doc["instances"]) == 2 and len(doc["columns"]) == 7
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
