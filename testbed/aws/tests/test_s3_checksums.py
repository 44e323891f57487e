"""The test bed's S3 multipart checksums: a FULL_OBJECT CRC-32 is kept as a running value
(as AWS derives it from the parts, instead of moto's second copy of the object); the value
must be the whole object's CRC-32, and the COMPOSITE path is moto's own."""

from __future__ import annotations

import base64
import binascii
import os

from conftest import Aws

PART = 5 * 1024 * 1024  # S3's smallest part but the last


def b64_crc32(data: bytes) -> str:
    return base64.b64encode(binascii.crc32(data).to_bytes(4, "big")).decode()


def upload(aws: Aws, key: str, parts: list[bytes], checksum_type: str) -> dict:
    s3 = aws.client("s3")
    bucket = f"checksums-{checksum_type.lower().replace('_', '-')}"
    s3.create_bucket(Bucket=bucket)
    up = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType=checksum_type
    )["UploadId"]
    done = []
    for n, body in enumerate(parts, start=1):
        r = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=body,
            ChecksumCRC32=b64_crc32(body),
        )
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": b64_crc32(body)})
    extra = {}
    if checksum_type == "FULL_OBJECT":
        extra = {"ChecksumCRC32": b64_crc32(b"".join(parts)), "ChecksumType": "FULL_OBJECT"}
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": done}, **extra
    )
    return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def test_a_full_object_crc32_is_the_whole_objects_crc32(aws: Aws) -> None:
    parts = [os.urandom(PART), os.urandom(PART), b"tail of the recording"]
    head = upload(aws, "full.mp4", parts, "FULL_OBJECT")
    assert head["ChecksumCRC32"] == b64_crc32(b"".join(parts))
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head["ContentLength"] == 2 * PART + len(parts[2])


def test_a_composite_crc32_is_the_checksum_of_the_part_checksums(aws: Aws) -> None:
    parts = [os.urandom(PART), b"last"]
    head = upload(aws, "composite.mp4", parts, "COMPOSITE")
    joined = b"".join(binascii.crc32(p).to_bytes(4, "big") for p in parts)
    # AWS reports a composite value with its part count ("...-2"); moto 5.2.5 leaves the
    # suffix off (an emulator difference, not ours: the product uses FULL_OBJECT).
    assert head["ChecksumCRC32"] in (b64_crc32(joined), f"{b64_crc32(joined)}-2")
    assert head["ChecksumType"] == "COMPOSITE"
