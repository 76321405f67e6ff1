"""The loopback image server: serves files, 404s the rest, counts requests, plays planted faults."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rs5m.sample import serve_images
from rs5m.sample.server import is_loopback


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "laion2b").mkdir()
    (tmp_path / "laion2b" / "00001.jpg").write_bytes(b"\xff\xd8fake-jpeg\xff\xd9")
    (tmp_path.parent / "secret.txt").write_text("outside the root")
    return tmp_path


def _get(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serves_files_and_404s_the_rest(root: Path) -> None:
    with serve_images(root) as addr:
        host, port = addr
        assert host == "127.0.0.1" and port > 0 and addr.base_url == f"http://127.0.0.1:{port}"
        assert _get(f"{addr.base_url}/laion2b/00001.jpg") == (200, b"\xff\xd8fake-jpeg\xff\xd9")
        assert _get(f"{addr.base_url}/laion2b/00001.jpg?width=200&quality=90")[0] == 200
        assert _get(f"{addr.base_url}/laion2b/00001.jpg", method="HEAD") == (200, b"")
        assert _get(f"{addr.base_url}/laion2b/missing.jpg")[0] == 404
        assert _get(f"{addr.base_url}/laion2b/")[0] == 404  # no directory listings
        assert _get(f"{addr.base_url}/../secret.txt")[0] == 404
        assert addr.request_log["/laion2b/00001.jpg"] == 3
        assert addr.request_log["/laion2b/missing.jpg"] == 1
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/laion2b/00001.jpg", timeout=2)


def test_planted_faults_then_success(root: Path) -> None:
    with serve_images(root, faults={"/laion2b/00001.jpg": [503, 500]}) as addr:
        codes = [_get(f"{addr.base_url}/laion2b/00001.jpg")[0] for _ in range(3)]
    assert codes == [503, 500, 200]


def test_refuses_non_loopback(root: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    for host in ("0.0.0.0", "192.168.1.10", "example.org", ""):
        assert not is_loopback(host)
        with pytest.raises(ValueError):
            with serve_images(root, host=host):
                pass


def test_serves_the_world_images(image_world: Path) -> None:
    some = next((image_world / "images" / "laion2b").glob("*.jpg"))
    with serve_images(image_world / "images") as addr:
        status, body = _get(f"{addr.base_url}/laion2b/{some.name}")
    assert status == 200 and body == some.read_bytes()
