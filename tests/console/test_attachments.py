"""The attachment store's pure parts: photos decoded and stripped of their location, stored by
hash once, and viewed through links that are signed and expire (local directory); a bucket's
store through boto3 (its HEAD and PUT checked with botocore's stubber, its links signed
offline). The HTTP upload and viewing on the real services are in test_officer_api.py."""
from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from PIL import Image, PngImagePlugin

from services.console.attachments import LocalStore, S3Store, clean, open_store, sha_of_uri, uri_of
from services.console.attachments.images import location_of
from shared.config import settings
from shared.errors import InvalidArgument, NotFound

PHOTOS = Path(__file__).parent / "photos"
WITH_GPS = (PHOTOS / "street-with-gps.jpg").read_bytes()
PNG = (PHOTOS / "drain.png").read_bytes()


def test_the_location_is_stripped_and_the_rest_of_the_photo_kept():
    assert location_of(WITH_GPS)[2] == (31.0, 14.0, 1.5)  # the file really carries a position
    cleaned = clean(WITH_GPS, "image/jpeg")
    assert location_of(cleaned.data) == {}
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.format == "JPEG" and image.size == (480, 360)
        assert image.getexif()[0x010F] == "gridbus test camera"  # the camera and time stay
    assert cleaned.sha256 == hashlib.sha256(cleaned.data).hexdigest()


def test_the_same_photo_cleans_to_the_same_bytes():
    assert clean(WITH_GPS, "image/jpeg").sha256 == clean(WITH_GPS, "image/jpeg; charset=binary").sha256


def test_a_png_is_kept_a_png():
    cleaned = clean(PNG, "image/png")
    assert cleaned.media_type == "image/png" and cleaned.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("data, media_type, words", [
    (WITH_GPS, "image/png", "not a readable image/png"),   # the bytes decide, not the header
    (PNG, "image/jpeg", "not a readable image/jpeg"),
    (b"MZ\x90\x00 not a photo", "image/jpeg", "not a readable"),
    (WITH_GPS[:400], "image/jpeg", "could not be read"),
    (b"", "image/jpeg", "empty"),
    (WITH_GPS, "application/pdf", "must be one of"),
    (WITH_GPS, "", "untyped"),
])
def test_what_is_not_a_photo_of_its_type_is_refused(data, media_type, words):
    with pytest.raises(InvalidArgument, match=words):
        clean(data, media_type)


def test_a_photo_of_too_many_pixels_is_refused_before_decoding():
    out = io.BytesIO()
    Image.new("1", (9000, 6000)).save(out, "PNG")  # 54 MP, compresses to almost nothing
    with pytest.raises(InvalidArgument, match="million"):
        clean(out.getvalue(), "image/png")


def test_the_local_store_writes_a_hash_once(tmp_path):
    store = LocalStore(tmp_path, b"k" * 32, 300)
    cleaned = clean(WITH_GPS, "image/jpeg")
    first = store.put(cleaned.sha256, cleaned.data, cleaned.media_type)
    again = store.put(cleaned.sha256, cleaned.data, cleaned.media_type)
    assert first.created and not again.created
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path(cleaned.sha256, "image/jpeg")] and files[0].read_bytes() == cleaned.data
    assert first.json()["uri"] == uri_of(cleaned.sha256) and sha_of_uri(uri_of(cleaned.sha256)) == cleaned.sha256
    with pytest.raises(InvalidArgument):
        store.put("0" * 64, cleaned.data, "image/jpeg")  # not the bytes' hash: nothing written
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_a_local_link_works_until_it_expires_and_only_as_signed(tmp_path):
    store = LocalStore(tmp_path, b"k" * 32, 300)
    cleaned = clean(PNG, "image/png")
    store.put(cleaned.sha256, cleaned.data, "image/png")
    link = store.link(cleaned.sha256, "image/png", now=1_000_000)
    path, query = link.split("?")
    name = path.rsplit("/", 1)[1]
    expires, sig = (part.split("=")[1] for part in query.split("&"))
    assert store.open_link(name, expires, sig, now=1_000_299) == (store.path(cleaned.sha256, "image/png"), "image/png")
    for args, now in [((name, expires, sig), 1_000_300),                          # expired
                      ((name, str(int(expires) + 3600), sig), 1_000_000),         # a longer life, same signature
                      ((name.replace(".png", ".jpg"), expires, sig), 1_000_000),  # another file
                      ((name, expires, "0" * 64), 1_000_000),
                      ((name, "soon", sig), 1_000_000)]:
        with pytest.raises(NotFound):
            store.open_link(*args, now=now)
    other = LocalStore(tmp_path, b"x" * 32, 300)  # another key signs other links
    with pytest.raises(NotFound):
        other.open_link(name, expires, sig, now=1_000_000)


def test_sha_of_uri_takes_only_the_stores_own_references():
    assert sha_of_uri("s3://bucket/" + "a" * 64) is None
    assert sha_of_uri("gridbus://attachments/" + "A" * 64) is None
    assert sha_of_uri("gridbus://attachments/" + "a" * 64 + "/x") is None


def _s3_client():
    return boto3.client("s3", region_name="cn-north-1", endpoint_url="https://oss.example.test",
                        aws_access_key_id="test-access", aws_secret_access_key="test-secret")


def test_the_bucket_store_puts_a_new_hash_with_its_checksum_and_skips_a_known_one():
    client = _s3_client()
    store = S3Store("photos", 300, client=client)
    cleaned = clean(WITH_GPS, "image/jpeg")
    key = f"attachments/{cleaned.sha256}.jpg"
    with Stubber(client) as stub:
        stub.add_client_error("head_object", "404", expected_params={"Bucket": "photos", "Key": key})
        stub.add_response("put_object", {}, expected_params={
            "Bucket": "photos", "Key": key, "Body": cleaned.data, "ContentType": "image/jpeg",
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(cleaned.sha256)).decode()})
        stub.add_response("head_object", {"ContentLength": len(cleaned.data)},
                          expected_params={"Bucket": "photos", "Key": key})
        assert store.put(cleaned.sha256, cleaned.data, "image/jpeg").created
        assert not store.put(cleaned.sha256, cleaned.data, "image/jpeg").created
        stub.assert_no_pending_responses()


def test_the_bucket_store_links_are_presigned_and_short_lived():
    store = S3Store("photos", 120, client=_s3_client())
    link = store.link("b" * 64, "image/webp")
    assert link.startswith("https://oss.example.test/photos/attachments/" + "b" * 64 + ".webp?")
    assert "X-Amz-Expires=120" in link and "X-Amz-Signature=" in link


def test_the_settings_choose_the_store(tmp_path):
    local = open_store(settings({"GRIDBUS_ATTACHMENT_DIR": str(tmp_path)}))
    assert isinstance(local, LocalStore) and local.root == tmp_path and local.link_seconds == 300
    bucket = open_store(settings({"GRIDBUS_ATTACHMENT_S3_BUCKET": "photos", "GRIDBUS_ATTACHMENT_S3_REGION": "cn-north-1",
                                  "GRIDBUS_ATTACHMENT_S3_ENDPOINT": "https://oss.example.test",
                                  "GRIDBUS_ATTACHMENT_LINK_SECONDS": "60"}))
    assert isinstance(bucket, S3Store) and bucket.bucket == "photos" and bucket.link_seconds == 60


@pytest.mark.parametrize("fmt, media_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_an_xmp_packet_that_repeats_the_location_goes_too(fmt, media_type):
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>31,14.02N</exif:GPSLatitude></x:xmpmeta>'
    out = io.BytesIO()
    if fmt == "PNG":  # PNG carries XMP in an iTXt chunk
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        Image.open(io.BytesIO(WITH_GPS)).save(out, fmt, pnginfo=info)
    else:
        Image.open(io.BytesIO(WITH_GPS)).save(out, fmt, xmp=xmp)
    assert b"GPSLatitude" in out.getvalue()
    assert b"GPSLatitude" not in clean(out.getvalue(), media_type).data
