"""CloudWatch over Smithy RPC v2 CBOR, served by moto's CloudWatch backend.

`aws-sdk-cloudwatch` >= 1.100 (Rust) speaks only Smithy RPC v2 CBOR:

    POST /service/GraniteServiceVersion20100801/operation/<Operation>
    smithy-protocol: rpc-v2-cbor
    Content-Type: application/cbor          (body: the input structure as a CBOR map)

moto 5.2.5 answers that path with 404 but serves the same operations over the AWS
JSON 1.0 protocol. This gateway translates: it decodes the CBOR input, re-encodes it
as the JSON protocol request (timestamps as epoch seconds, blobs as base64), lets
moto handle it (same account via `x-moto-account-id`, same region via the SigV4
credential scope of the original Authorization header), and encodes moto's answer
back to CBOR following the operation's output shape from botocore's CloudWatch
model: timestamps as tag 1 epoch seconds, doubles as CBOR floats, integers as CBOR
integers (the Rust decoder is strict about each). Errors become the RPC v2 CBOR
error envelope `{"__type": "com.amazonaws.cloudwatch#<Shape>", "message": ...}`
with moto's HTTP status and its `x-amzn-query-error` header (CloudWatch is
awsQueryCompatible; the SDK takes the error code from that header).

Because the translation is shape-directed, every CloudWatch operation moto
implements works this way, not only the ones the project uses today.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import cbor2
from botocore.loaders import Loader
from botocore.model import OperationNotFoundError, ServiceModel, Shape

LOG = logging.getLogger("testbed.cbor")

SERVICE_SHAPE = "GraniteServiceVersion20100801"
NAMESPACE = "com.amazonaws.cloudwatch"
PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
# Used only for routing inside moto when a request carries no SigV4 header.
UNSIGNED_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testbed/20000101/us-east-1/monitoring/aws4_request, "
    "SignedHeaders=host, Signature=0"
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_rpc_v2_cbor(environ: dict[str, Any]) -> bool:
    return bool(PATH.match(environ.get("PATH_INFO", "")))


class CborGateway:
    """WSGI app for `/service/GraniteServiceVersion20100801/operation/*`."""

    def __init__(self, moto_app: WsgiApp) -> None:
        self._moto_app = moto_app
        loader = Loader()
        self._model = ServiceModel(
            loader.load_service_model("cloudwatch", "service-2"), service_name="cloudwatch"
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, headers, body = self._handle(environ)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _handle(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        match = PATH.match(environ.get("PATH_INFO", ""))
        assert match is not None
        if match["service"] != SERVICE_SHAPE:
            return _error(404, "UnknownOperationException", f"unknown service {match['service']}")
        if environ.get("REQUEST_METHOD") != "POST":
            return _error(405, "UnknownOperationException", "RPC v2 CBOR requests must be POST")
        try:
            operation = self._model.operation_model(match["operation"])
        except OperationNotFoundError:
            return _error(404, "UnknownOperationException", f"unknown operation {match['operation']}")

        raw = _read_body(environ)
        try:
            decoded = cbor2.loads(raw) if raw else {}
        except (cbor2.CBORDecodeError, ValueError) as err:
            return _error(400, "SerializationException", f"malformed CBOR body: {err}")
        if not isinstance(decoded, dict):
            return _error(400, "SerializationException", "the CBOR body must be a map")

        input_shape = operation.input_shape
        json_input = to_json_value(decoded, input_shape) if input_shape is not None else {}
        status, moto_headers, moto_body = self._call_moto(environ, operation.name, json_input)

        headers = _base_headers(moto_headers)
        if status >= 400:
            return self._translate_error(status, headers, moto_body)
        output_shape = operation.output_shape
        if output_shape is None:
            return _status_line(status), headers, b""
        document = json.loads(moto_body) if moto_body.strip() else {}
        return _status_line(status), headers, cbor2.dumps(to_cbor_value(document, output_shape))

    def _call_moto(
        self, environ: dict[str, Any], operation: str, json_input: Any
    ) -> tuple[int, dict[str, str], bytes]:
        payload = json.dumps(json_input).encode("utf-8")
        inner = dict(environ)
        inner.update(
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(payload)),
                "HTTP_X_AMZ_TARGET": f"{SERVICE_SHAPE}.{operation}",
                "wsgi.input": io.BytesIO(payload),
            }
        )
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        inner.setdefault("HTTP_AUTHORIZATION", UNSIGNED_AUTHORIZATION)

        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = {k.lower(): v for k, v in headers}
            return chunks.append

        result = self._moto_app(inner, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(chunks)

    @staticmethod
    def _translate_error(
        status: int, headers: list[tuple[str, str]], moto_body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            document = json.loads(moto_body)
        except ValueError:
            document = None
        if isinstance(document, dict) and "__type" in document:
            shape_name = str(document["__type"]).rsplit("#", 1)[-1]
            message = document.get("message") or document.get("Message") or ""
            envelope = {"__type": f"{NAMESPACE}#{shape_name}", "message": message}
        else:  # not a modeled error, e.g. an operation moto does not implement
            text = moto_body.decode("utf-8", errors="replace").strip().splitlines()
            envelope = {"__type": "InternalFailure", "message": (text[-1] if text else "")[:1000]}
        return _status_line(status), headers, cbor2.dumps(envelope)


# --- shape-directed conversion -----------------------------------------------------


def to_json_value(value: Any, shape: Shape) -> Any:
    """CBOR-decoded input -> the AWS JSON 1.0 protocol's representation."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return value
        return {
            key: to_json_value(item, shape.members[key])
            for key, item in value.items()
            if key in shape.members and item is not None
        }
    if kind == "list":
        return [to_json_value(item, shape.member) for item in value]
    if kind == "map":
        return {key: to_json_value(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            return moment.timestamp()
        return float(value)
    if kind == "blob":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind in ("double", "float") and isinstance(value, int):
        return float(value)
    return value


def to_cbor_value(value: Any, shape: Shape) -> Any:
    """moto's JSON 1.0 output -> what an RPC v2 CBOR client decodes for the shape."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        return {
            key: to_cbor_value(item, shape.members[key])
            for key, item in value.items()
            if key in shape.members and item is not None
        }
    if kind == "list":
        return [to_cbor_value(item, shape.member) for item in value]
    if kind == "map":
        return {key: to_cbor_value(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        return cbor2.CBORTag(1, _epoch_seconds(value))
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- HTTP helpers --------------------------------------------------------------------


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body: Content-Length bytes, or all of a chunked body. Without
    either there is no body (reading the raw socket then would wait forever)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        return stream.read(length)
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _base_headers(moto_headers: dict[str, str]) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    for name in ("x-amzn-requestid", "x-amzn-query-error"):
        if name in moto_headers:
            headers.append((name, moto_headers[name]))
    return headers


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _error(status: int, code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    LOG.info("rpc-v2-cbor %s: %s", code, message)
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    return _status_line(status), headers, cbor2.dumps({"__type": code, "message": message})
