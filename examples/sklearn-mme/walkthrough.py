#!/usr/bin/python3
"""walkthrough.py — the sklearn-mme image on berth as a multi-model
endpoint, the way SageMaker's multi-model sample does it (boto3, unchanged):
upload model-K.tar.gz artifacts under one s3:// prefix → create_model with
Mode MultiModel and that prefix → create_endpoint_config → create_endpoint
→ waiter → invoke_endpoint with TargetModel for each model → add one more
model under the prefix (no API call) and invoke it → clean up.

    make framework-images          # builds the image (cached in /var/cache/berth)
    /usr/bin/python3 examples/sklearn-mme/walkthrough.py [--endpoint-url URL] \\
        --object-store-root DIR    # berthd's --object-store-root (s3://B/K → DIR/B/K)

With --s3-endpoint-url the artifacts are uploaded with boto3's S3 client
instead (berthd started with --s3-endpoint URL --s3-bucket BUCKET: berthd
reads only the buckets it lists; --bucket, default berth-walkthrough).
Exits non-zero if an answer is wrong.
Calls are signed with a key of berthd's credentials file, found where boto3
looks: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the file itself as a
profile (AWS_SHARED_CREDENTIALS_FILE=/etc/berth/credentials AWS_PROFILE=admin).
"""
import argparse
import json
import os
import shutil
import sys
import time
import uuid

import boto3
from botocore.config import Config

NAME = "sklearn-mme"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint-url", default=os.environ.get("BERTH_URL", "http://127.0.0.1:8080"))
    p.add_argument("--image-dir", default="/var/cache/berth/images/" + NAME,
                   help="the build's directory (oci/, rootfs/, samples/artifacts/, samples/expected.json)")
    p.add_argument("--object-store-root", default=os.environ.get("BERTH_OBJECT_STORE_ROOT"),
                   help="berthd's --object-store-root (the artifacts are copied under it)")
    p.add_argument("--s3-endpoint-url", help="upload to this S3-compatible endpoint instead")
    p.add_argument("--bucket", default="berth-walkthrough")
    p.add_argument("--wait-s", type=int, default=180)
    return p.parse_args()


class Uploader:
    def __init__(self, a):
        self.a = a
        self.s3 = None
        if a.s3_endpoint_url:
            self.s3 = boto3.client("s3", endpoint_url=a.s3_endpoint_url, region_name="us-east-1")
        elif not a.object_store_root:
            raise SystemExit("give --object-store-root (berthd's) or --s3-endpoint-url")
        self.keys = []

    def put(self, path, key):
        if self.s3:
            self.s3.upload_file(path, self.a.bucket, key)
        else:
            dst = os.path.join(self.a.object_store_root, self.a.bucket, key)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(path, dst)
        self.keys.append(key)

    def remove_all(self):
        for key in self.keys:
            if self.s3:
                self.s3.delete_object(Bucket=self.a.bucket, Key=key)
            else:
                try:
                    os.unlink(os.path.join(self.a.object_store_root, self.a.bucket, key))
                except FileNotFoundError:
                    pass


def predictions(rt, endpoint, target, body):
    resp = rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", TargetModel=target, Body=body)
    return [float(v) for v in resp["Body"].read().decode().split()]


def close(got, want):
    return len(got) == len(want) and all(abs(g - w) <= 1e-6 * max(1.0, abs(w)) for g, w in zip(got, want))


def main():
    a = parse_args()
    d = os.path.realpath(a.image_dir)
    image = "oci:%s/oci:latest" % d
    with open(os.path.join(d, "samples", "expected.json")) as f:
        expected = json.load(f)
    kw = dict(endpoint_url=a.endpoint_url, region_name="us-east-1",
              config=Config(retries={"total_max_attempts": 1}, read_timeout=70))
    sm, rt = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
    name = "%s-%s" % (NAME, uuid.uuid4().hex[:6])
    prefix = "mme/%s/" % name
    up = Uploader(a)
    models = sorted(expected["models"])
    # all but the last now; the last is added once the endpoint serves
    for m in models[:-1]:
        up.put(os.path.join(d, "samples", "artifacts", m), prefix + m)
    model_data_url = "s3://%s/%s" % (a.bucket, prefix)

    t0 = time.monotonic()
    try:
        sm.create_model(ModelName=name,
                        ExecutionRoleArn="arn:aws:iam::000000000000:role/walkthrough",
                        PrimaryContainer={"Image": image, "Mode": "MultiModel", "ModelDataUrl": model_data_url})
        try:
            sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": name,
                "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
            try:
                sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
                try:
                    sm.get_waiter("endpoint_in_service").wait(
                        EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": a.wait_s})
                    print("endpoint %s InService after %.1fs (image %s, models under %s)"
                          % (name, time.monotonic() - t0, image, model_data_url))
                    body = expected["input_csv"].encode()
                    for m in models[:-1]:
                        t1 = time.monotonic()
                        got = predictions(rt, name, m, body)
                        cold = time.monotonic() - t1
                        t1 = time.monotonic()
                        predictions(rt, name, m, body)
                        print("%-16s first call %6.1f ms, warm %5.1f ms: %s"
                              % (m, cold * 1e3, (time.monotonic() - t1) * 1e3, [round(v, 2) for v in got]))
                        assert close(got, expected["models"][m]), "%s answered %s, expected %s" % (
                            m, got, expected["models"][m])
                    # a model added under the prefix later: servable without any API call
                    last = models[-1]
                    up.put(os.path.join(d, "samples", "artifacts", last), prefix + last)
                    got = predictions(rt, name, last, body)
                    print("%-16s added after the endpoint was created: %s" % (last, [round(v, 2) for v in got]))
                    assert close(got, expected["models"][last]), "unexpected answer from %s" % last
                finally:
                    sm.delete_endpoint(EndpointName=name)
                    wait_gone(sm, name)
            finally:
                sm.delete_endpoint_config(EndpointConfigName=name)
        finally:
            sm.delete_model(ModelName=name)
    finally:
        up.remove_all()
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
