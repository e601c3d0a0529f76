import pytest

from simkv.errors import InputError
from simkv.units import parse_duration, parse_size


@pytest.mark.parametrize("text,expected", [
    ("10 GB", 10 * 1000**3), ("10GiB", 10 * 1024**3), ("1e9", 10**9), ("512", 512),
    ("1.5MiB", int(1.5 * 1024**2)), ("8M", 8 * 1000**2), (4096, 4096),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["ten", "10 GX", "-5GB", "", "GB", "nan"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError, match="--capacity"):
        parse_size(text, where="--capacity")


@pytest.mark.parametrize("text,expected", [
    ("5m", 300.0), ("1h", 3600.0), ("300", 300.0), ("250ms", 0.25), ("2d", 172800.0),
    ("inf", None), ("none", None),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["five minutes", "0", "-1m", "3 weeks"])
def test_parse_duration_rejects(text):
    with pytest.raises(InputError, match="--ttl"):
        parse_duration(text, where="--ttl")
