"""Tests of the request signature scheme in contract/signing.py."""

import time

import pytest

from ecommerce_bridge.contract.signing import SignatureError, sign, verify

SECRET = "whsec-signing-test"
BODY = b'{"order_id":"SO-1","total":"10.00"}'


def test_round_trip_returns_the_signed_timestamp():
	header = sign(SECRET, BODY, timestamp=1_700_000_000)
	assert header.startswith("t=1700000000,v1=")
	assert verify(SECRET, BODY, header, now=1_700_000_010) == 1_700_000_000


def test_round_trip_with_current_time_and_empty_body():
	assert verify(SECRET, b"", sign(SECRET, b"")) == pytest.approx(time.time(), abs=5)


def test_tampered_body_is_refused():
	header = sign(SECRET, BODY)
	with pytest.raises(SignatureError, match="does not match"):
		verify(SECRET, BODY.replace(b"10.00", b"1.00"), header)


def test_wrong_secret_is_refused_and_not_echoed():
	header = sign("some-other-secret", BODY)
	with pytest.raises(SignatureError) as caught:
		verify(SECRET, BODY, header)
	assert SECRET not in str(caught.value)
	assert "some-other-secret" not in str(caught.value)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused(header):
	with pytest.raises(SignatureError, match="missing"):
		verify(SECRET, BODY, header)


@pytest.mark.parametrize(
	"header",
	[
		"garbage",
		"t=abc,v1=deadbeef",
		"v1=deadbeef",
		"t=1700000000",
		"t=1700000000,v2=deadbeef",
		"t=-5,v1=deadbeef",
	],
)
def test_malformed_header_is_refused(header):
	with pytest.raises(SignatureError, match="must look like"):
		verify(SECRET, BODY, header, now=1_700_000_000)


def test_old_timestamp_is_refused_as_a_replay():
	header = sign(SECRET, BODY, timestamp=1_700_000_000)
	assert verify(SECRET, BODY, header, now=1_700_000_300) == 1_700_000_000
	with pytest.raises(SignatureError, match="outside the allowed window"):
		verify(SECRET, BODY, header, now=1_700_000_301)


def test_future_skew_beyond_tolerance_is_refused():
	header = sign(SECRET, BODY, timestamp=1_700_000_400)
	with pytest.raises(SignatureError, match="outside the allowed window"):
		verify(SECRET, BODY, header, now=1_700_000_000)
	assert verify(SECRET, BODY, header, now=1_700_000_000, tolerance=500) == 1_700_000_400


def test_any_matching_v1_value_is_accepted():
	good = sign(SECRET, BODY, timestamp=1_700_000_000)
	timestamp, mac = good.split(",")
	rotated = f"{timestamp},v1={'0' * 64},{mac}"
	assert verify(SECRET, BODY, rotated, now=1_700_000_000) == 1_700_000_000
	with pytest.raises(SignatureError, match="does not match"):
		verify(SECRET, BODY, f"{timestamp},v1={'0' * 64},v1={'f' * 64}", now=1_700_000_000)


def test_signing_without_a_secret_is_refused():
	with pytest.raises(SignatureError):
		sign("", BODY)
	with pytest.raises(SignatureError):
		verify("", BODY, sign(SECRET, BODY))


def test_non_ascii_digits_in_the_timestamp_are_a_signature_error():
	with pytest.raises(SignatureError):
		verify(SECRET, BODY, "t=\u00b2,v1=00")
