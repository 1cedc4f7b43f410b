"""Drives a key lifecycle through Alibaba Cloud's official Python SDKs, unchanged, against a
running Sesame server over HTTPS (certificate verification off: the server's certificate is
self-signed).

  * alibabacloud-kms20160120 (tea SDK), default V3 signature, and V1 (signature_algorithm='v2');
  * aliyun-python-sdk-core + aliyun-python-sdk-kms (legacy, V1), JSON and XML responses.

Environment: SESAME_ENDPOINT (host:port), SESAME_AK, SESAME_SK. Prints one PASS line per
check; any failed check raises and exits non-zero.
"""
import base64
import json
import os

from alibabacloud_kms20160120 import models as m
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import models as om
from alibabacloud_tea_util import models as um

ENDPOINT = os.environ["SESAME_ENDPOINT"]
AK = os.environ["SESAME_AK"]
SK = os.environ["SESAME_SK"]
RT = um.RuntimeOptions(ignore_ssl=True)


def passed(name):
    print(f"PASS {name}", flush=True)


def tea(signature_algorithm=None):
    cfg = om.Config(access_key_id=AK, access_key_secret=SK, region_id="cn-hangzhou", endpoint=ENDPOINT, protocol="https")
    if signature_algorithm:
        cfg.signature_algorithm = signature_algorithm
    return Client(cfg)


def expect_error(fn, code, status):
    try:
        fn()
    except Exception as e:  # the SDK raises ClientException / ServerException
        got_code = getattr(e, "code", None)
        got_status = getattr(e, "status_code", None) or (getattr(e, "data", None) or {}).get("statusCode")
        assert got_code == code, f"expected {code}, got {got_code}: {e}"
        assert got_status == status, f"expected HTTP {status}, got {got_status}: {e}"
        return e
    raise AssertionError(f"expected {code}, but the call succeeded")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def tea_v3_lifecycle():
    c = tea()
    key = c.create_key_with_options(m.CreateKeyRequest(description="sdk test", enable_automatic_rotation=True, rotation_interval="30d"), RT).body.key_metadata
    assert key.key_state == "Enabled" and key.key_spec == "Aliyun_AES_256", key
    assert key.rotation_interval == "2592000s" and key.automatic_rotation == "Enabled", key
    assert key.dkmsinstance_id.startswith("kst-"), key
    key_id = key.key_id
    passed("tea v3 CreateKey")

    d = c.describe_key_with_options(m.DescribeKeyRequest(key_id=key_id), RT).body.key_metadata
    assert d.key_id == key_id and d.arn.endswith("key/" + key_id), d
    alias = "alias/sdk-" + key_id[-8:]
    c.create_alias_with_options(m.CreateAliasRequest(alias_name=alias, key_id=key_id), RT)
    expect_error(lambda: c.create_alias_with_options(m.CreateAliasRequest(alias_name=alias, key_id=key_id), RT), "AliasAlreadyExists", 400)
    aliases = c.list_aliases_with_options(m.ListAliasesRequest(page_size=100), RT).body.aliases.alias
    assert any(a.alias_name == alias and a.key_id == key_id for a in aliases), aliases
    passed("tea v3 DescribeKey, CreateAlias, ListAliases")

    ctx = {"app": "orders", "tier": "gold"}
    enc = c.encrypt_with_options(m.EncryptRequest(key_id=alias, plaintext=b64("hello sesame"), encryption_context=ctx), RT).body
    assert enc.key_id == key_id and enc.key_version_id == key.primary_key_version, enc
    dec = c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob, encryption_context=ctx), RT).body
    assert base64.b64decode(dec.plaintext) == b"hello sesame" and dec.key_id == key_id, dec
    passed("tea v3 Encrypt/Decrypt round trip with EncryptionContext")

    expect_error(lambda: c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob, encryption_context={"app": "other"}), RT), "InvalidCiphertext", 400)
    expect_error(lambda: c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob), RT), "InvalidCiphertext", 400)
    passed("tea v3 Decrypt with a different or missing context fails")

    dk = c.generate_data_key_with_options(m.GenerateDataKeyRequest(key_id=key_id, key_spec="AES_128"), RT).body
    assert len(base64.b64decode(dk.plaintext)) == 16, dk
    back = c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=dk.ciphertext_blob), RT).body
    assert back.plaintext == dk.plaintext
    dk2 = c.generate_data_key_without_plaintext_with_options(m.GenerateDataKeyWithoutPlaintextRequest(key_id=key_id, number_of_bytes=48, encryption_context={"k": "v"}), RT).body
    assert len(base64.b64decode(c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=dk2.ciphertext_blob, encryption_context={"k": "v"}), RT).body.plaintext)) == 48
    passed("tea v3 GenerateDataKey and GenerateDataKeyWithoutPlaintext decrypt")

    c.disable_key_with_options(m.DisableKeyRequest(key_id=key_id), RT)
    expect_error(lambda: c.encrypt_with_options(m.EncryptRequest(key_id=key_id, plaintext=b64("x")), RT), "Rejected.Disabled", 409)
    expect_error(lambda: c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob, encryption_context=ctx), RT), "Rejected.Disabled", 409)
    c.enable_key_with_options(m.EnableKeyRequest(key_id=key_id), RT)
    passed("tea v3 a disabled key refuses Encrypt and Decrypt")

    v2 = c.create_key_version_with_options(m.CreateKeyVersionRequest(key_id=key_id), RT).body.key_version.key_version_id
    assert v2 != key.primary_key_version
    enc2 = c.encrypt_with_options(m.EncryptRequest(key_id=key_id, plaintext=b64("after rotation")), RT).body
    assert enc2.key_version_id == v2, enc2
    old = c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob, encryption_context=ctx), RT).body
    assert base64.b64decode(old.plaintext) == b"hello sesame" and old.key_version_id == key.primary_key_version
    passed("tea v3 CreateKeyVersion: new version encrypts, the old one still decrypts")

    other = c.create_key_with_options(m.CreateKeyRequest(description="target"), RT).body.key_metadata.key_id
    re = c.re_encrypt_with_options(m.ReEncryptRequest(ciphertext_blob=enc.ciphertext_blob, source_encryption_context=ctx, destination_key_id=other, destination_encryption_context={"to": "other"}), RT).body
    assert re.key_id == other
    again = c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=re.ciphertext_blob, encryption_context={"to": "other"}), RT).body
    assert base64.b64decode(again.plaintext) == b"hello sesame"
    passed("tea v3 ReEncrypt to another key")

    expect_error(lambda: c.schedule_key_deletion_with_options(m.ScheduleKeyDeletionRequest(key_id=other, pending_window_in_days=6), RT), "InvalidParameter", 400)
    c.schedule_key_deletion_with_options(m.ScheduleKeyDeletionRequest(key_id=other, pending_window_in_days=7), RT)
    d = c.describe_key_with_options(m.DescribeKeyRequest(key_id=other), RT).body.key_metadata
    assert d.key_state == "PendingDeletion" and d.delete_date, d
    expect_error(lambda: c.encrypt_with_options(m.EncryptRequest(key_id=other, plaintext=b64("x")), RT), "Rejected.PendingDeletion", 409)
    expect_error(lambda: c.enable_key_with_options(m.EnableKeyRequest(key_id=other), RT), "Rejected.StateModifiedFailed", 409)
    c.cancel_key_deletion_with_options(m.CancelKeyDeletionRequest(key_id=other), RT)
    assert c.describe_key_with_options(m.DescribeKeyRequest(key_id=other), RT).body.key_metadata.key_state == "Enabled"
    passed("tea v3 ScheduleKeyDeletion (7-366 days) and CancelKeyDeletion")

    keys = c.list_keys_with_options(m.ListKeysRequest(page_number=1, page_size=100), RT).body
    assert keys.total_count >= 2 and any(k.key_id == key_id for k in keys.keys.key), keys
    expect_error(lambda: c.describe_key_with_options(m.DescribeKeyRequest(key_id="key-doesnotexist"), RT), "Forbidden.KeyNotFound", 404)
    expect_error(lambda: c.describe_key_with_options(m.DescribeKeyRequest(key_id="alias/none"), RT), "Forbidden.AliasNotFound", 404)
    expect_error(lambda: c.list_keys_with_options(m.ListKeysRequest(page_size=101), RT), "InvalidParameter", 400)
    passed("tea v3 ListKeys paging and not-found errors")

    c.delete_alias_with_options(m.DeleteAliasRequest(alias_name=alias), RT)
    expect_error(lambda: c.delete_alias_with_options(m.DeleteAliasRequest(alias_name=alias), RT), "Forbidden.AliasNotFound", 404)
    passed("tea v3 DeleteAlias")
    return key_id


def tea_v1(key_id):
    c = tea("v2")
    enc = c.encrypt_with_options(m.EncryptRequest(key_id=key_id, plaintext=b64("v1 text"), encryption_context={"a": "b"}), RT).body
    dec = c.decrypt_with_options(m.DecryptRequest(ciphertext_blob=enc.ciphertext_blob, encryption_context={"a": "b"}), RT).body
    assert base64.b64decode(dec.plaintext) == b"v1 text"
    expect_error(lambda: c.describe_key_with_options(m.DescribeKeyRequest(key_id="key-nope"), RT), "Forbidden.KeyNotFound", 404)
    passed("tea v1 (HMAC-SHA1) Encrypt/Decrypt and errors")


def legacy(key_id):
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkkms.request.v20160120 import DecryptRequest, DescribeKeyRequest, EncryptRequest

    client = AcsClient(AK, SK, "cn-hangzhou", verify=False)

    def call(req, fmt="JSON"):
        req.set_endpoint(ENDPOINT)
        if fmt == "JSON":
            return client.do_action_with_exception(req)
        # do_action_with_exception forces JSON; do_action keeps the requested format.
        req.set_accept_format(fmt)
        return client.do_action(req)

    e = EncryptRequest.EncryptRequest()
    e.set_KeyId(key_id)
    e.set_Plaintext(b64("legacy text with spaces & symbols *~"))
    e.set_EncryptionContext(json.dumps({"x": "y z"}))
    blob = json.loads(call(e))["CiphertextBlob"]
    d = DecryptRequest.DecryptRequest()
    d.set_CiphertextBlob(blob)
    d.set_EncryptionContext(json.dumps({"x": "y z"}))
    assert base64.b64decode(json.loads(call(d))["Plaintext"]) == b"legacy text with spaces & symbols *~"
    passed("legacy SDK (V1) Encrypt/Decrypt")

    dk = DescribeKeyRequest.DescribeKeyRequest()
    dk.set_KeyId(key_id)
    xml = call(dk, "XML").decode()
    assert xml.startswith("<?xml") and "<KMS>" in xml and f"<KeyId>{key_id}</KeyId>" in xml, xml
    passed("legacy SDK XML response")

    missing = DescribeKeyRequest.DescribeKeyRequest()
    missing.set_KeyId("key-missing")
    try:
        call(missing)
        raise AssertionError("expected a ServerException")
    except ServerException as ex:
        assert ex.get_http_status() == 404 and ex.get_error_code() == "Forbidden.KeyNotFound", ex
        assert ex.get_request_id(), ex
    passed("legacy SDK error mapping")


if __name__ == "__main__":
    kid = tea_v3_lifecycle()
    tea_v1(kid)
    legacy(kid)
    print("ALL PASSED")
