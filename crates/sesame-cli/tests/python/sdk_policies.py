"""A policy matrix through Alibaba Cloud's official Python SDK (tea, V3): each case calls as one
user and expects success or a refusal code. The Rust test that runs this sets up the users,
policies, secrets and secret policies, and passes the cases in SESAME_CASES (JSON):
[{"name", "ak", "sk", "call": "get"|"create", "secret", "expect": "ok"|"<code>"}].
Prints one PASS line per case.
"""
import json
import os

from alibabacloud_kms20160120 import models as m
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import models as om
from alibabacloud_tea_util import models as um

ENDPOINT = os.environ["SESAME_ENDPOINT"]
PROTOCOL = os.environ.get("SESAME_PROTOCOL", "https")
RT = um.RuntimeOptions(ignore_ssl=True)


def client(ak, sk):
    return Client(om.Config(access_key_id=ak, access_key_secret=sk, region_id="cn-hangzhou", endpoint=ENDPOINT, protocol=PROTOCOL))


def call(c, case):
    if case["call"] == "get":
        v = c.get_secret_value_with_options(m.GetSecretValueRequest(secret_name=case["secret"]), RT).body
        assert v.secret_name == case["secret"], v
    elif case["call"] == "create":
        c.create_secret_with_options(m.CreateSecretRequest(secret_name=case["secret"], version_id="v1", secret_data="made by " + case["name"]), RT)
    else:
        raise AssertionError("unknown call " + case["call"])


for case in json.loads(os.environ["SESAME_CASES"]):
    c = client(case["ak"], case["sk"])
    try:
        call(c, case)
        got = "ok"
    except Exception as e:
        got = getattr(e, "code", None) or repr(e)
        status = getattr(e, "status_code", None) or (getattr(e, "data", None) or {}).get("statusCode")
        if got == "Forbidden.NoPermission":
            assert status == 403, f"{case['name']}: a refusal is HTTP 403, got {status}"
    assert got == case["expect"], f"{case['name']}: expected {case['expect']}, got {got}"
    print(f"PASS {case['name']}", flush=True)
print("ALL PASSED")
