"""Where cleaned photos live, by their SHA-256: a local directory (the default, and what the
tests run) or an S3-compatible bucket (boto3; AWS S3, MinIO, Aliyun OSS, Tencent COS...).
Writing a hash already stored writes nothing; a write is whole or absent (a temporary file
renamed into place; a single PUT). Links to view a photo are signed and expire: the local
store's are checked by the console (verify_link), the bucket's are the bucket's own presigned
URLs. An incident refers to a photo as `gridbus://attachments/<sha256>`, whichever store."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from services.console.attachments.images import EXTENSIONS, MEDIA_TYPES
from shared.config import Settings
from shared.errors import InvalidArgument, NotFound

URI_PREFIX = "gridbus://attachments/"
_SHA = re.compile(r"[0-9a-f]{64}")
_TYPE_OF_EXTENSION = {ext: media for media, ext in EXTENSIONS.items()}


def uri_of(sha256: str) -> str:
    return URI_PREFIX + sha256


def sha_of_uri(uri: str) -> str | None:
    """The hash of a photo in gridbus's store, or None for a reference to storage elsewhere."""
    if uri.startswith(URI_PREFIX) and _SHA.fullmatch(uri[len(URI_PREFIX):]):
        return uri[len(URI_PREFIX):]
    return None


def note_with_photos(note: str, photos: list[dict]) -> str:
    """The history note of an on-site action (the officer's app): the officer's words, then one photo reference a line
    (the incident's audit trail keeps them; the console signs links to them)."""
    return "\n".join([note, *(f"{p['uri']} {p['media_type']}" for p in photos)]).strip()


def photos_in_note(note: str | None) -> list[tuple[str, str]]:
    """The (sha256, media type) of each photo a note names, as note_with_photos wrote them."""
    out = []
    for line in (note or "").splitlines():
        uri, _, media_type = line.strip().partition(" ")
        sha = sha_of_uri(uri)
        if sha and media_type in MEDIA_TYPES:
            out.append((sha, media_type))
    return out



@dataclass(frozen=True)
class Stored:
    sha256: str
    size_bytes: int
    media_type: str
    created: bool  # False: the same bytes were already there, nothing was written

    def json(self) -> dict:
        return {"sha256": self.sha256, "size_bytes": self.size_bytes, "media_type": self.media_type,
                "uri": uri_of(self.sha256), "created": self.created}


class Store(Protocol):
    def put(self, sha256: str, data: bytes, media_type: str) -> Stored: ...
    def link(self, sha256: str, media_type: str, now: float | None = None) -> str: ...


class LocalStore:
    """Files under `root/ab/abcdef....jpg`; links are `/attachments/<sha>.<ext>?expires=&sig=`,
    HMAC-signed with the console's link key."""

    def __init__(self, root: Path, key: bytes, link_seconds: float):
        self.root, self._key, self.link_seconds = Path(root), key, link_seconds

    def path(self, sha256: str, media_type: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.{EXTENSIONS[media_type]}"

    def put(self, sha256: str, data: bytes, media_type: str) -> Stored:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise InvalidArgument("the bytes do not have that hash")
        path = self.path(sha256, media_type)
        if path.exists():
            return Stored(sha256, len(data), media_type, created=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Stored(sha256, len(data), media_type, created=True)

    def _signature(self, name: str, expires: int) -> str:
        return hmac.new(self._key, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, sha256: str, media_type: str, now: float | None = None) -> str:
        name = f"{sha256}.{EXTENSIONS[media_type]}"
        expires = int((now or time.time()) + self.link_seconds)
        return f"/attachments/{name}?" + urlencode({"expires": expires, "sig": self._signature(name, expires)})

    def open_link(self, name: str, expires: str, sig: str, now: float | None = None) -> tuple[Path, str]:
        """The file a link names and its media type, if the link is genuine and not expired;
        NotFound otherwise (a wrong link tells nothing about which photos exist)."""
        sha, _, ext = name.partition(".")
        media_type = _TYPE_OF_EXTENSION.get(ext)
        try:
            expiry = int(expires)
        except ValueError:
            expiry = 0
        good = (_SHA.fullmatch(sha) is not None and media_type is not None and
                hmac.compare_digest(self._signature(name, expiry), sig or "") and (now or time.time()) < expiry)
        path = self.path(sha, media_type) if good else None
        if path is None or not path.is_file():
            raise NotFound("no such photo, or the link has expired: open the case again")
        return path, media_type


class S3Store:
    """A bucket of an S3-compatible service, keys `attachments/<sha>.<ext>`; boto3 reads its
    credentials the usual way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role)."""

    def __init__(self, bucket: str, link_seconds: float, endpoint_url: str | None = None,
                 region: str | None = None, client=None):
        if client is None:
            import boto3
            from botocore.config import Config
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                  config=Config(signature_version="s3v4", retries={"mode": "standard"}))
        self.bucket, self.link_seconds, self.client = bucket, link_seconds, client

    @staticmethod
    def key(sha256: str, media_type: str) -> str:
        return f"attachments/{sha256}.{EXTENSIONS[media_type]}"

    def put(self, sha256: str, data: bytes, media_type: str) -> Stored:
        from botocore.exceptions import ClientError
        key = self.key(sha256, media_type)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return Stored(sha256, len(data), media_type, created=False)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=media_type,
                               ChecksumSHA256=checksum)  # the service checks the bytes it got
        return Stored(sha256, len(data), media_type, created=True)

    def link(self, sha256: str, media_type: str, now: float | None = None) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(sha256, media_type)},
            ExpiresIn=int(self.link_seconds))


def open_store(s: Settings) -> LocalStore | S3Store:
    """The store the settings choose: a bucket when GRIDBUS_ATTACHMENT_S3_BUCKET is set, else
    the directory GRIDBUS_ATTACHMENT_DIR."""
    if s.attachment_s3_bucket:
        return S3Store(s.attachment_s3_bucket, s.attachment_link_seconds, s.attachment_s3_endpoint,
                       s.attachment_s3_region)
    key = s.attachment_link_key.encode() if s.attachment_link_key else secrets.token_bytes(32)
    return LocalStore(Path(s.attachment_dir), key, s.attachment_link_seconds)
