"""CloudWatch over Smithy RPC v2 CBOR, with requests encoded byte by byte the way
aws-sdk-cloudwatch (Rust) encodes them: indefinite-length maps, definite arrays,
doubles as 64-bit floats, integers as CBOR integers, timestamps as tag 1 + float."""

from __future__ import annotations

import socket
import struct
import time
from datetime import UTC, datetime
from http.client import HTTPConnection
from typing import Any

import cbor2
import pytest
from conftest import Aws, http

OPERATION_URL = "{base}/service/GraniteServiceVersion20100801/operation/{operation}"


class SdkEncoder:
    """The subset of aws-smithy-cbor's Encoder the CloudWatch serializers use."""

    def __init__(self) -> None:
        self.out = bytearray()

    def begin_map(self) -> SdkEncoder:
        self.out.append(0xBF)
        return self

    def end(self) -> SdkEncoder:
        self.out.append(0xFF)
        return self

    def str(self, text: str) -> SdkEncoder:
        raw = text.encode()
        self._head(3, len(raw))
        self.out += raw
        return self

    def array(self, length: int) -> SdkEncoder:
        self._head(4, length)
        return self

    def double(self, value: float) -> SdkEncoder:
        self.out.append(0xFB)
        self.out += struct.pack(">d", value)
        return self

    def integer(self, value: int) -> SdkEncoder:
        if value >= 0:
            self._head(0, value)
        else:
            self._head(1, -1 - value)
        return self

    def boolean(self, value: bool) -> SdkEncoder:
        self.out.append(0xF5 if value else 0xF4)
        return self

    def timestamp(self, epoch_s: float) -> SdkEncoder:
        self.out.append(0xC1)  # tag 1: epoch-based date/time
        return self.double(epoch_s)

    def _head(self, major: int, length: int) -> None:
        if length < 24:
            self.out.append(major << 5 | length)
        elif length < 0x100:
            self.out += bytes([major << 5 | 24, length])
        elif length < 0x10000:
            self.out += bytes([major << 5 | 25]) + struct.pack(">H", length)
        else:
            self.out += bytes([major << 5 | 26]) + struct.pack(">I", length)

    def bytes(self) -> bytes:
        return bytes(self.out)


def dimensions(encoder: SdkEncoder, pairs: list[tuple[str, str]]) -> None:
    encoder.str("Dimensions").array(len(pairs))
    for name, value in pairs:
        encoder.begin_map().str("Name").str(name).str("Value").str(value).end()


def put_metric_data_body(now: float) -> bytes:
    e = SdkEncoder().begin_map().str("Namespace").str("Jibri").str("MetricData").array(3)
    # A single value with dimensions, timestamp and unit.
    e.begin_map().str("MetricName").str("Available")
    dimensions(e, [("Shard", "shard-a")])
    e.str("Timestamp").timestamp(now).str("Value").double(2.0).str("Unit").str("Count").end()
    # Values/Counts: 1 x 1.0 + 3 x 2.0.
    e.begin_map().str("MetricName").str("Available")
    dimensions(e, [("Shard", "shard-a")])
    e.str("Timestamp").timestamp(now)
    e.str("Values").array(2).double(1.0).double(2.0)
    e.str("Counts").array(2).double(1.0).double(3.0)
    e.str("Unit").str("Count").str("StorageResolution").integer(60).end()
    # A statistic set.
    e.begin_map().str("MetricName").str("Busy")
    dimensions(e, [("Shard", "shard-a")])
    e.str("Timestamp").timestamp(now)
    e.str("StatisticValues").begin_map()
    e.str("SampleCount").double(4.0).str("Sum").double(6.0).str("Minimum").double(0.0).str("Maximum").double(
        3.0
    )
    e.end().str("Unit").str("Count").end()
    return e.end().bytes()


def get_metric_data_body(start: float, end: float, stat: str = "Sum") -> bytes:
    e = SdkEncoder().begin_map().str("MetricDataQueries").array(1)
    e.begin_map().str("Id").str("available").str("MetricStat").begin_map()
    e.str("Metric").begin_map().str("Namespace").str("Jibri").str("MetricName").str("Available")
    dimensions(e, [("Shard", "shard-a")])
    e.end().str("Period").integer(60).str("Stat").str(stat).end()
    e.str("ReturnData").boolean(True).end()
    return e.str("StartTime").timestamp(start).str("EndTime").timestamp(end).end().bytes()


def call(
    aws: Aws, operation: str, body: bytes, region: str = "us-east-1", account: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
        "x-amzn-query-mode": "true",
        "x-moto-account-id": account or aws.account_id,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/monitoring/aws4_request, "
        "SignedHeaders=content-type;host;smithy-protocol, Signature=0",
    }
    return http(
        "POST", OPERATION_URL.format(base=aws.base_url, operation=operation), raw=body, headers=headers
    )


def ok(aws: Aws, operation: str, body: bytes, **kwargs: Any) -> Any:
    status, headers, payload = call(aws, operation, body, **kwargs)
    assert status == 200, cbor2.loads(payload) if payload else payload
    assert headers["Content-Type"] == "application/cbor"
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    return payload


def test_put_metric_data_then_get_metric_data_round_trip(aws: Aws) -> None:
    now = time.time()
    assert ok(aws, "PutMetricData", put_metric_data_body(now)) == b""  # no output shape

    payload = ok(aws, "GetMetricData", get_metric_data_body(now - 600, now + 600))
    [result] = cbor2.loads(payload)["MetricDataResults"]
    assert result["Id"] == "available"
    assert result["StatusCode"] == "Complete"
    assert result["Values"] == [9.0]  # 2 + 1x1 + 3x2
    [stamp] = result["Timestamps"]
    assert isinstance(stamp, datetime) and abs(stamp.timestamp() - now) < 61

    # On the wire: timestamps are tag 1 (0xc1) + float, values are float64 (0xfb).
    assert b"\xc1\xfb" in payload
    assert cbor2.dumps("Values") + b"\x81\xfb" + struct.pack(">d", 9.0) in payload


def test_get_metric_statistics_over_cbor(aws: Aws) -> None:
    now = time.time()
    ok(aws, "PutMetricData", put_metric_data_body(now))
    e = SdkEncoder().begin_map().str("Namespace").str("Jibri").str("MetricName").str("Busy")
    dimensions(e, [("Shard", "shard-a")])
    e.str("StartTime").timestamp(now - 600).str("EndTime").timestamp(now + 600).str("Period").integer(60)
    e.str("Statistics").array(3).str("Sum").str("Maximum").str("SampleCount").end()

    answer = cbor2.loads(ok(aws, "GetMetricStatistics", e.bytes()))
    [point] = answer["Datapoints"]
    assert (point["Sum"], point["Maximum"], point["SampleCount"]) == (6.0, 3.0, 4.0)
    assert isinstance(point["Timestamp"], datetime)


def test_list_metrics_over_cbor(aws: Aws) -> None:
    ok(aws, "PutMetricData", put_metric_data_body(time.time()))
    answer = cbor2.loads(
        ok(aws, "ListMetrics", SdkEncoder().begin_map().str("Namespace").str("Jibri").end().bytes())
    )
    assert sorted(m["MetricName"] for m in answer["Metrics"]) == ["Available", "Busy"]
    assert answer["Metrics"][0]["Dimensions"] == [{"Name": "Shard", "Value": "shard-a"}]


def test_put_metric_alarm_then_describe_alarms(aws: Aws) -> None:
    e = SdkEncoder().begin_map().str("AlarmName").str("jibri-busy").str("ActionsEnabled").boolean(True)
    e.str("MetricName").str("Busy").str("Namespace").str("Jibri").str("Statistic").str("Maximum")
    dimensions(e, [("Shard", "shard-a")])
    e.str("Period").integer(60).str("EvaluationPeriods").integer(2).str("Threshold").double(5.0)
    e.str("ComparisonOperator").str("GreaterThanOrEqualToThreshold").end()
    assert ok(aws, "PutMetricAlarm", e.bytes()) == b""

    body = SdkEncoder().begin_map().str("AlarmNames").array(1).str("jibri-busy").end().bytes()
    payload = ok(aws, "DescribeAlarms", body)
    [alarm] = cbor2.loads(payload)["MetricAlarms"]
    assert alarm["AlarmName"] == "jibri-busy"
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{aws.account_id}:alarm:jibri-busy"
    assert alarm["Threshold"] == 5.0 and alarm["EvaluationPeriods"] == 2 and alarm["Period"] == 60
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime)
    # Integers stay CBOR integers, doubles CBOR floats: the Rust decoder is strict.
    assert cbor2.dumps("EvaluationPeriods") + b"\x02" in payload
    assert cbor2.dumps("Threshold") + b"\xfb" in payload


def test_metrics_are_per_account_and_region(aws: Aws) -> None:
    now = time.time()
    ok(aws, "PutMetricData", put_metric_data_body(now), region="eu-west-1")
    query = get_metric_data_body(now - 600, now + 600)

    def values(**kwargs: Any) -> list[float]:
        return cbor2.loads(ok(aws, "GetMetricData", query, **kwargs))["MetricDataResults"][0]["Values"]

    assert values(region="eu-west-1") == [9.0]
    assert values(region="us-east-1") == []
    assert values(region="eu-west-1", account="777777777777") == []


def test_errors_use_the_cbor_envelope_and_the_query_error_header(aws: Aws) -> None:
    e = SdkEncoder().begin_map().str("Namespace").str("Jibri").str("MetricName").str("Busy")
    now = time.time()
    e.str("StartTime").timestamp(now - 60).str("EndTime").timestamp(now).str("Period").integer(60).end()

    status, headers, payload = call(aws, "GetMetricStatistics", e.bytes())

    assert status == 400
    assert headers["Content-Type"] == "application/cbor"
    assert headers["x-amzn-query-error"] == "InvalidParameterCombination;Sender"
    assert cbor2.loads(payload) == {
        "__type": "com.amazonaws.cloudwatch#InvalidParameterCombinationException",
        "message": "Must specify either Statistics or ExtendedStatistics",
    }


@pytest.mark.parametrize(
    ("operation", "body", "status", "code"),
    [
        ("NoSuchOperation", b"\xa0", 404, "UnknownOperationException"),
        ("ListMetrics", b"\xbf\x61", 400, "SerializationException"),
        ("ListMetrics", cbor2.dumps([1, 2]), 400, "SerializationException"),
    ],
)
def test_bad_requests(aws: Aws, operation: str, body: bytes, status: int, code: str) -> None:
    got_status, _, payload = call(aws, operation, body)
    assert got_status == status
    assert cbor2.loads(payload)["__type"] == code


def test_timestamps_from_cbor2_datetimes_also_work(aws: Aws) -> None:
    now = datetime.now(UTC)
    body = cbor2.dumps(
        {
            "Namespace": "Jibri",
            "MetricData": [
                {"MetricName": "Available", "Value": 1.0, "Timestamp": cbor2.CBORTag(1, int(now.timestamp()))}
            ],
        }
    )
    ok(aws, "PutMetricData", body)
    answer = cbor2.loads(ok(aws, "ListMetrics", cbor2.dumps({})))
    assert [m["MetricName"] for m in answer["Metrics"]] == ["Available"]


def test_a_chunked_request_body_is_read(aws: Aws) -> None:
    host, port = aws.base_url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=10)
    body = SdkEncoder().begin_map().str("Namespace").str("Nothing").end().bytes()
    connection.request(
        "POST",
        "/service/GraniteServiceVersion20100801/operation/ListMetrics",
        body=iter([body[:5], body[5:]]),
        headers={
            "smithy-protocol": "rpc-v2-cbor",
            "Content-Type": "application/cbor",
            "x-moto-account-id": aws.account_id,
        },
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 200
    assert cbor2.loads(response.read()) == {"Metrics": []}


def test_a_request_without_body_or_length_does_not_hang(aws: Aws) -> None:
    host, port = aws.base_url.removeprefix("http://").split(":")
    request = (
        "POST /service/GraniteServiceVersion20100801/operation/ListMetrics HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nsmithy-protocol: rpc-v2-cbor\r\nx-moto-account-id: {aws.account_id}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(request.encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
