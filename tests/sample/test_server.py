"""The loopback image server: serves files, 404s the rest, counts requests, plays planted faults, routes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rs5m.config import DownloadConfig, ValidityConfig
from rs5m.pipeline.download.fetch import FetchError, GuardedFetcher
from rs5m.pipeline.validity.check import check_image
from rs5m.sample import serve_images
from rs5m.sample.server import ROUTES_FILE, is_loopback


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


def test_routes_sleep_redirect_and_prompt_shutdown(root: Path) -> None:
    (root / ROUTES_FILE).write_text(json.dumps({"/laion2b/00001.jpg": {"sleep": 0.3}}))
    routes = {"/laion2b/slow.jpg": {"sleep": 30}, "/laion2b/away.jpg": {"redirect": "http://10.0.0.1/x.jpg"}}
    with serve_images(root, routes=routes) as addr:
        t0 = time.monotonic()
        assert _get(f"{addr.base_url}/laion2b/00001.jpg")[0] == 200  # file route read from ROUTES_FILE
        assert time.monotonic() - t0 >= 0.3
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(f"{addr.base_url}/laion2b/slow.jpg", timeout=0.5)
        no_follow = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as caught:
            no_follow.open(f"{addr.base_url}/laion2b/away.jpg", timeout=5)
        assert caught.value.code == 302 and caught.value.headers["Location"] == "http://10.0.0.1/x.jpg"
        assert _get(f"{addr.base_url}/{ROUTES_FILE}")[0] == 404  # the route table is not served
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5  # a handler mid-sleep does not hold the shutdown
    assert addr.request_log["/laion2b/slow.jpg"] == 1 and addr.request_log["/laion2b/away.jpg"] == 1


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_world_fetch_faults_through_the_guard(image_world: Path) -> None:
    """The planted timeout, private redirect and bomb meet the real fetcher and validity check."""
    exp = json.loads((image_world / "expected.json").read_text(encoding="utf-8"))
    laion, coyo = (exp["sources"][s]["planted"] for s in ("laion2b", "coyo700m"))
    [slow] = laion["timeouts"]
    [(away, target)] = coyo["private_redirects"].items()
    [bomb] = [u for u, f in laion["invalid_images"].items() if f == "bomb"]
    with serve_images(image_world / "images") as addr:
        host = addr.base_url.removeprefix("http://")
        fix = exp["base_url"]
        cfg = DownloadConfig(allow_hosts=[host], timeout=0.5, total_timeout=1.0, retries=0)
        fetcher = GuardedFetcher(cfg)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(slow.replace(fix, addr.base_url), None, None)
        assert caught.value.reason == "download_timeout"
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(away.replace(fix, addr.base_url), None, None)
        assert caught.value.reason == "redirect_refused" and urlsplit(target).hostname in str(caught.value)
        data = fetcher.fetch(bomb.replace(fix, addr.base_url), None, None)
    assert len(data) < 200_000
    assert check_image(data, ValidityConfig()).reason == "too_many_pixels"


@pytest.mark.parametrize("mode", ["reset", "stall"])
def test_outage_breaks_the_first_requests_then_recovers(root: Path, mode: str) -> None:
    """An outage breaks exactly its first N requests (RST or silence), counted, then files serve again."""
    url_path = "/laion2b/00001.jpg"
    with serve_images(root, outage={"mode": mode, "requests": 2}, faults={url_path: [503]}) as addr:
        fetcher = GuardedFetcher(DownloadConfig(allow_hosts=[addr.base_url[7:]], timeout=0.5, retries=0))
        reasons = []
        for _ in range(2):
            with pytest.raises(FetchError) as caught:
                fetcher.fetch(addr.base_url + url_path, None, None)
            reasons.append((caught.value.reason, str(caught.value)))
        with pytest.raises(FetchError, match="HTTP 503"):  # the planted fault was not consumed by the outage
            fetcher.fetch(addr.base_url + url_path, None, None)
        assert fetcher.fetch(addr.base_url + url_path, None, None) == b"\xff\xd8fake-jpeg\xff\xd9"
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5  # stalled handlers do not hold the shutdown
    want = "download_transient" if mode == "reset" else "download_timeout"
    assert [r for r, _ in reasons] == [want, want], reasons
    if mode == "reset":
        assert all("ConnectionResetError" in detail for _, detail in reasons), reasons
    assert addr.outage_log == {url_path: 2} and addr.request_log[url_path] == 4


def test_outage_spec_is_checked(root: Path) -> None:
    bad_specs = [
        {"mode": "flap", "requests": 1},
        {"mode": "reset", "requests": -1},
        {"mode": "stall"},
        {"mode": "reset", "requests": 1, "colour": "red"},
    ]
    for bad in bad_specs:
        with pytest.raises(ValueError, match="outage must be"):
            with serve_images(root, outage=bad):
                pass
