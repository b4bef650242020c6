"""The attachment store: officers' photos, content-addressed by SHA-256 after their EXIF location
is stripped (nothing with the GPS tags is ever written), in a local directory by default or in
S3-compatible object storage by configuration; viewed through short-lived signed links that the
console hands out only with a case its member may read (views.case)."""
from services.console.attachments.images import MEDIA_TYPES, Cleaned, clean
from services.console.attachments.store import LocalStore, S3Store, Stored, Store, open_store, uri_of, sha_of_uri

__all__ = ["MEDIA_TYPES", "Cleaned", "clean", "LocalStore", "S3Store", "Stored", "Store", "open_store", "uri_of",
           "sha_of_uri"]
