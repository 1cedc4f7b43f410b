"""Drives a generic-secret lifecycle through Alibaba Cloud's official Python SDK (tea, V3),
reads secrets with the legacy SDK (V1, JSON and XML) and with aliyun-secret-manager-client,
against a running Sesame server over HTTPS with certificate verification off.

Environment: SESAME_ENDPOINT (host:port), SESAME_AK, SESAME_SK. Prints one PASS line per check.
"""
import base64
import json
import os
import re
import xml.etree.ElementTree as ET

from alibabacloud_kms20160120 import models as m
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import models as om
from alibabacloud_tea_util import models as um

ENDPOINT = os.environ["SESAME_ENDPOINT"]
AK = os.environ["SESAME_AK"]
SK = os.environ["SESAME_SK"]
RT = um.RuntimeOptions(ignore_ssl=True)
c = Client(om.Config(access_key_id=AK, access_key_secret=SK, region_id="cn-hangzhou", endpoint=ENDPOINT, protocol="https"))


def passed(name):
    print(f"PASS {name}", flush=True)


def expect_error(fn, code, status):
    try:
        fn()
    except Exception as e:
        got = (getattr(e, "code", None), getattr(e, "status_code", None) or (getattr(e, "data", None) or {}).get("statusCode"))
        assert got == (code, status), f"expected {code}/{status}, got {got}: {e}"
        return
    raise AssertionError(f"expected {code}, but the call succeeded")


def get(name, **kw):
    return c.get_secret_value_with_options(m.GetSecretValueRequest(secret_name=name, **kw), RT).body


def lifecycle():
    key = c.create_key_with_options(m.CreateKeyRequest(description="secrets", tags=json.dumps([{"TagKey": "made-by", "TagValue": "sdk"}])), RT).body.key_metadata
    kt = c.list_tag_resources_with_options(m.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key.key_id]), RT).body
    assert [(t.tag_key, t.tag_value) for t in kt.tag_resources.tag_resource] == [("made-by", "sdk")], kt
    passed("CreateKey with Tags")
    name = "sdk/app-" + key.key_id[-6:]
    r = c.create_secret_with_options(m.CreateSecretRequest(
        secret_name=name, version_id="v1", secret_data="first value with spaces & symbols =+/",
        encryption_key_id=key.key_id, description="sdk secret",
        tags=json.dumps([{"TagKey": "env", "TagValue": "test"}, {"TagKey": "team", "TagValue": "db"}])), RT).body
    assert r.secret_name == name and r.version_id == "v1" and r.arn.endswith("secret/" + name) and r.dkmsinstance_id == key.dkmsinstance_id, r
    expect_error(lambda: c.create_secret_with_options(m.CreateSecretRequest(secret_name=name, version_id="v1", secret_data="x", encryption_key_id=key.key_id), RT), "Rejected.ResourceExist", 409)
    passed("CreateSecret, and a duplicate is refused")

    v = get(name)
    assert v.secret_name == name and v.secret_data == "first value with spaces & symbols =+/" and v.version_id == "v1", v
    assert v.version_stages.version_stage == ["ACSCurrent"] and v.secret_type == "Generic" and v.secret_data_type == "text", v
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v.create_time) and v.extended_config is None, v
    passed("GetSecretValue ACSCurrent")

    c.put_secret_value_with_options(m.PutSecretValueRequest(secret_name=name, version_id="v2", secret_data="second"), RT)
    assert get(name).secret_data == "second"
    assert get(name, version_stage="ACSPrevious").secret_data.startswith("first")
    again = c.put_secret_value_with_options(m.PutSecretValueRequest(secret_name=name, version_id="v2", secret_data="second"), RT).body
    assert again.version_stages.version_stage == ["ACSCurrent"], again
    expect_error(lambda: c.put_secret_value_with_options(m.PutSecretValueRequest(secret_name=name, version_id="v2", secret_data="other"), RT), "Rejected.ResourceExist", 409)
    passed("PutSecretValue moves ACSCurrent/ACSPrevious and is idempotent per VersionId")

    c.put_secret_value_with_options(m.PutSecretValueRequest(secret_name=name, version_id="v3", secret_data="pending", version_stages=json.dumps(["MyPending"])), RT)
    assert get(name).secret_data == "second", "a custom stage leaves ACSCurrent where it was"
    assert get(name, version_stage="MyPending").version_id == "v3"
    c.update_secret_version_stage_with_options(m.UpdateSecretVersionStageRequest(secret_name=name, version_stage="ACSCurrent", move_to_version="v3"), RT)
    assert get(name).version_id == "v3" and get(name, version_stage="ACSPrevious").version_id == "v2"
    expect_error(lambda: c.update_secret_version_stage_with_options(m.UpdateSecretVersionStageRequest(secret_name=name, version_stage="ACSCurrent", remove_from_version="v3"), RT), "InvalidParameter", 400)
    c.update_secret_version_stage_with_options(m.UpdateSecretVersionStageRequest(secret_name=name, version_stage="MyPending", remove_from_version="v3"), RT)
    expect_error(lambda: get(name, version_stage="MyPending"), "Forbidden.ResourceNotFound", 404)
    assert get(name, version_id="v1").secret_data.startswith("first")
    expect_error(lambda: get(name, version_id="v1", version_stage="ACSCurrent"), "InvalidParameter", 400)
    passed("custom stages and UpdateSecretVersionStage")

    ids = c.list_secret_version_ids_with_options(m.ListSecretVersionIdsRequest(secret_name=name), RT).body
    staged = {x.version_id: x.version_stages.version_stage for x in ids.version_ids.version_id}
    assert staged == {"v3": ["ACSCurrent"], "v2": ["ACSPrevious"]}, staged
    everything = c.list_secret_version_ids_with_options(m.ListSecretVersionIdsRequest(secret_name=name, include_deprecated="true"), RT).body
    assert everything.total_count == 3, everything
    passed("ListSecretVersionIds with and without deprecated versions")

    c.update_secret_with_options(m.UpdateSecretRequest(secret_name=name, description="changed", extended_config=m.UpdateSecretRequestExtendedConfig(custom_data={"Endpoint": "db.local"})), RT)
    d = c.describe_secret_with_options(m.DescribeSecretRequest(secret_name=name, fetch_tags="true"), RT).body
    assert d.description == "changed" and d.encryption_key_id == key.key_id and json.loads(d.extended_config)["CustomData"] == {"Endpoint": "db.local"}, d
    assert sorted((t.tag_key, t.tag_value) for t in d.tags.tag) == [("env", "test"), ("team", "db")], d
    passed("UpdateSecret and DescribeSecret")

    c.tag_resource_with_options(m.TagResourceRequest(secret_name=name, tags=json.dumps([{"TagKey": "owner", "TagValue": "ops"}])), RT)
    c.untag_resource_with_options(m.UntagResourceRequest(secret_name=name, tag_keys=json.dumps(["team"])), RT)
    tr = c.list_tag_resources_with_options(m.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="secret", resource_id=[name]), RT).body
    assert sorted((t.tag_key, t.tag_value) for t in tr.tag_resources.tag_resource) == [("env", "test"), ("owner", "ops")], tr
    c.tag_resources_with_options(m.TagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key.key_id], tag=[m.TagResourcesRequestTag(key="purpose", value="secrets")]), RT)
    kt = c.list_tag_resources_with_options(m.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="key", tag=[m.ListTagResourcesRequestTag(key="purpose", value="secrets")]), RT).body
    assert {t.resource_id for t in kt.tag_resources.tag_resource} == {key.key_id}, kt
    assert sorted(t.tag_key for t in c.list_tag_resources_with_options(m.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key.key_id]), RT).body.tag_resources.tag_resource) == ["made-by", "purpose"]
    passed("TagResource, UntagResource, TagResources, ListTagResources")

    lst = c.list_secrets_with_options(m.ListSecretsRequest(fetch_tags="true", filters=json.dumps([{"Key": "SecretName", "Values": [name]}]), page_number=1, page_size=10), RT).body
    assert lst.total_count == 1 and lst.secret_list.secret[0].secret_name == name and lst.secret_list.secret[0].tags.tag, lst
    none = c.list_secrets_with_options(m.ListSecretsRequest(filters=json.dumps([{"Key": "TagKey", "Values": ["nope"]}])), RT).body
    assert none.total_count == 0
    for i in range(3):
        c.create_secret_with_options(m.CreateSecretRequest(secret_name=f"{name}-page{i}", version_id="v1", secret_data="x", encryption_key_id=key.key_id), RT)
    p1 = c.list_secrets_with_options(m.ListSecretsRequest(filters=json.dumps([{"Key": "SecretName", "Values": [name + "-page"]}]), page_number=1, page_size=2), RT).body
    p2 = c.list_secrets_with_options(m.ListSecretsRequest(filters=json.dumps([{"Key": "SecretName", "Values": [name + "-page"]}]), page_number=2, page_size=2), RT).body
    assert p1.total_count == 3 and len(p1.secret_list.secret) == 2 and len(p2.secret_list.secret) == 1, (p1, p2)
    assert {s.secret_name for s in p1.secret_list.secret + p2.secret_list.secret} == {f"{name}-page{i}" for i in range(3)}
    passed("ListSecrets filters and pages")

    batch = c.batch_get_secret_value_with_options(m.BatchGetSecretValueRequest(secrets_list=[m.BatchGetSecretValueRequestSecretsList(secret_name=name), m.BatchGetSecretValueRequestSecretsList(secret_name="sdk/none")]), RT).body
    assert [s.secret_name for s in batch.secret_values] == [name] and batch.errors[0].code == "Forbidden.ResourceNotFound", batch
    now = get(name)
    assert (batch.secret_values[0].secret_data, batch.secret_values[0].create_time) == (now.secret_data, now.create_time), (batch, now)
    passed("BatchGetSecretValue returns values and per-secret errors")

    pol = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Principal": {"RAM": ["acs:ram::1:*"]}, "Action": ["kms:GetSecretValue"], "Resource": ["*"]}]})
    assert json.loads(c.get_secret_policy_with_options(m.GetSecretPolicyRequest(secret_name=name), RT).body.policy)["Version"] == "1"
    c.set_secret_policy_with_options(m.SetSecretPolicyRequest(secret_name=name, policy=pol), RT)
    assert c.get_secret_policy_with_options(m.GetSecretPolicyRequest(secret_name=name), RT).body.policy == pol
    passed("GetSecretPolicy and SetSecretPolicy")

    pw = c.get_random_password_with_options(m.GetRandomPasswordRequest(password_length="24", exclude_punctuation="true", require_each_included_type="true"), RT).body.random_password
    assert len(pw) == 24 and pw.isalnum() and any(ch.isdigit() for ch in pw) and any(ch.isupper() for ch in pw), pw
    expect_error(lambda: c.get_random_password_with_options(m.GetRandomPasswordRequest(password_length="7"), RT), "InvalidParameter", 400)
    passed("GetRandomPassword")

    d = c.delete_secret_with_options(m.DeleteSecretRequest(secret_name=name, recovery_window_in_days="7"), RT).body
    assert d.planned_delete_time, d
    expect_error(lambda: get(name), "Rejected.ResourceInDeleteWindow", 409)
    expect_error(lambda: c.create_secret_with_options(m.CreateSecretRequest(secret_name=name, version_id="v1", secret_data="x", encryption_key_id=key.key_id), RT), "Rejected.ResourceInDeleteWindow", 409)
    listed = c.list_secrets_with_options(m.ListSecretsRequest(filters=json.dumps([{"Key": "SecretName", "Values": [name]}])), RT).body.secret_list.secret
    assert any(s.secret_name == name and s.planned_delete_time for s in listed), listed
    c.restore_secret_with_options(m.RestoreSecretRequest(secret_name=name), RT)
    assert get(name).secret_data == "pending"
    passed("DeleteSecret with a recovery window, then RestoreSecret")

    c.delete_secret_with_options(m.DeleteSecretRequest(secret_name=name + "-page0", force_delete_without_recovery="true"), RT)
    expect_error(lambda: c.describe_secret_with_options(m.DescribeSecretRequest(secret_name=name + "-page0"), RT), "Forbidden.ResourceNotFound", 404)
    expect_error(lambda: c.restore_secret_with_options(m.RestoreSecretRequest(secret_name=name + "-page0"), RT), "Forbidden.ResourceNotFound", 404)
    passed("ForceDeleteWithoutRecovery")

    binary = base64.b64encode(bytes(range(256))).decode()
    c.create_secret_with_options(m.CreateSecretRequest(secret_name=name + "-bin", version_id="b1", secret_data=binary, secret_data_type="binary", encryption_key_id=key.key_id), RT)
    b = get(name + "-bin")
    assert b.secret_data_type == "binary" and base64.b64decode(b.secret_data) == bytes(range(256)), b
    passed("binary secrets")

    c.disable_key_with_options(m.DisableKeyRequest(key_id=key.key_id), RT)
    expect_error(lambda: get(name), "Rejected.Disabled", 409)
    c.enable_key_with_options(m.EnableKeyRequest(key_id=key.key_id), RT)
    passed("a secret whose key is disabled cannot be read")
    return name


def legacy_and_cache_client(name):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkkms.request.v20160120 import GetSecretValueRequest

    client = AcsClient(AK, SK, "cn-hangzhou", verify=False)
    req = GetSecretValueRequest.GetSecretValueRequest()
    req.set_SecretName(name)
    req.set_endpoint(ENDPOINT)
    body = json.loads(client.do_action_with_exception(req))
    assert body["SecretName"] == name and body["SecretData"] == "pending", body
    passed("legacy SDK (V1) GetSecretValue, JSON")

    req = GetSecretValueRequest.GetSecretValueRequest()
    req.set_SecretName(name)
    req.set_VersionStage("ACSCurrent")
    req.set_endpoint(ENDPOINT)
    req.set_accept_format("XML")
    root = ET.fromstring(client.do_action(req))
    assert root.tag == "KMS" and root.findtext("SecretName") == name and root.findtext("SecretData") == "pending", ET.tostring(root)
    assert [e.text for e in root.find("VersionStages")] == ["ACSCurrent"]
    passed("legacy SDK (V1) GetSecretValue, XML")

    os.environ["credentials_type"] = "ak"
    os.environ["credentials_access_key_id"] = AK
    os.environ["credentials_access_secret"] = SK
    os.environ["cache_client_region_id"] = json.dumps([{"regionId": "cn-hangzhou", "endpoint": ENDPOINT}])
    from alibaba_cloud_secretsmanager_client.secret_manager_cache_client_builder import SecretManagerCacheClientBuilder

    cache = SecretManagerCacheClientBuilder.new_client()
    info = cache.get_secret_info(name)
    assert info.secret_name == name and info.secret_value == "pending" and info.version_id == "v3" and info.secret_data_type == "text", vars(info)
    assert cache.get_secret_value(name) == "pending"
    passed("aliyun-secret-manager-client fetches and caches a secret")
    cache.close()


if __name__ == "__main__":
    n = lifecycle()
    legacy_and_cache_client(n)
    print("ALL PASSED", flush=True)
    os._exit(0)  # the cache client's scheduler threads would otherwise keep the process alive
