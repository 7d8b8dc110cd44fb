"""gearshift.download() and `gearshift download` against a scripted faulty server on 127.0.0.1."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gearshift
from gearshift import DownloadError, UsageError
from gearshift.cli import main
from gearshift.cli.download import parse_size, read_sha256_manifest, read_url_lines
from gearshift.downloader._queue import AUTO_START, Meter, Width
from gearshift.downloader._retry import backoff_delay, retry_after

sys.path.insert(0, str(Path(__file__).parent))
from faultserver import FaultServer, Reply

BODY = hashlib.shake_256(b"gearshift").digest(300_000)
PNG = {"Content-Type": "image/png"}
FAST = {"backoff": 0.01, "timeout": 5.0}  # retries in milliseconds, not seconds


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.endswith((".part", ".meta")))


def test_downloads_every_url_in_input_order_with_complete_files(tmp_path: Path) -> None:
    routes = {f"/f{i}.bin": Reply(body=BODY[: 1000 * (i + 1)]) for i in range(8)}
    with FaultServer(routes) as srv:
        urls = [srv.url(p) for p in routes]
        results = gearshift.download(urls, tmp_path, workers=3)
    assert [r.url for r in results] == urls
    for i, r in enumerate(results):
        assert (r.status, r.attempts, r.error, r.http_status) == ("done", 1, None, 200)
        assert r.path == tmp_path / f"f{i}.bin"
        assert r.path.read_bytes() == BODY[: 1000 * (i + 1)] and r.bytes == 1000 * (i + 1)
    assert leftovers(tmp_path) == []


def test_5xx_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    with FaultServer({"/x.bin": [Reply(500), Reply(503), Reply(body=BODY)]}) as srv:
        [r] = gearshift.download([srv.url("/x.bin")], tmp_path, **FAST)
        assert len(srv.hits("/x.bin")) == 3
        for hit in srv.hits("/x.bin"):  # the file's own bytes, never a compressed transfer
            assert (hit["User-Agent"], hit["Accept-Encoding"]) == ("gearshift", "identity")
    assert (r.status, r.attempts) == ("done", 3)
    assert (tmp_path / "x.bin").read_bytes() == BODY


def test_429_waits_for_retry_after(tmp_path: Path) -> None:
    replies = [Reply(429, headers={"Retry-After": "1"}), Reply(body=b"ok")]
    with FaultServer({"/x.txt": replies}) as srv:
        t0 = time.monotonic()
        [r] = gearshift.download([srv.url("/x.txt")], tmp_path, **FAST)
        waited = time.monotonic() - t0
    assert (r.status, r.attempts) == ("done", 2)
    assert waited >= 0.9  # Retry-After: 1 was honoured, not the 10 ms backoff


def test_retry_after_is_capped_by_max_wait(tmp_path: Path) -> None:
    replies = [Reply(429, headers={"Retry-After": "3600"}), Reply(body=b"ok")]
    with FaultServer({"/x.txt": replies}) as srv:
        t0 = time.monotonic()
        [r] = gearshift.download([srv.url("/x.txt")], tmp_path, max_wait=0.1, **FAST)
    assert (r.status, r.attempts) == ("done", 2)
    assert time.monotonic() - t0 < 30


def test_404_fails_at_once_with_url_status_and_reason(tmp_path: Path) -> None:
    with FaultServer({"/missing.png": Reply(404, body=b"gone")}) as srv:
        url = srv.url("/missing.png")
        [r] = gearshift.download([url], tmp_path, retries=5, **FAST)
    assert (r.status, r.attempts, r.path, r.http_status) == ("failed", 1, None, 404)
    assert isinstance(r.error, DownloadError)
    assert (r.error.url, r.error.status) == (url, 404)
    assert "HTTP 404 Not Found" in str(r.error) and url in str(r.error)
    assert list(tmp_path.iterdir()) == []


def test_reset_mid_body_resumes_with_range_and_if_range(tmp_path: Path) -> None:
    headers = {"ETag": '"v1"', **PNG}
    replies = [
        Reply(body=BODY, headers=headers, send=120_000, reset=True, ranges=True),
        Reply(body=BODY, headers=headers, ranges=True),
    ]
    with FaultServer({"/big.png": replies}) as srv:
        [r] = gearshift.download([srv.url("/big.png")], tmp_path, **FAST)
        first, second = srv.hits("/big.png")
    assert (r.status, r.attempts, r.http_status) == ("done", 2, 206)
    assert "Range" not in first
    got = int(second["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < got <= 120_000 and second["If-Range"] == '"v1"'
    assert (tmp_path / "big.png").read_bytes() == BODY
    assert leftovers(tmp_path) == []


def test_body_shorter_than_content_length_is_retried_from_the_start(tmp_path: Path) -> None:
    replies = [Reply(body=BODY, send=1000), Reply(body=BODY)]  # no validator: cannot resume
    with FaultServer({"/short.bin": replies}) as srv:
        [r] = gearshift.download([srv.url("/short.bin")], tmp_path, **FAST)
        assert "Range" not in srv.hits("/short.bin")[1]
    assert (r.status, r.attempts) == ("done", 2)
    assert (tmp_path / "short.bin").read_bytes() == BODY


def test_a_download_that_keeps_breaking_never_appears_under_its_final_name(tmp_path: Path) -> None:
    with FaultServer({"/short.bin": Reply(body=BODY, send=1000)}) as srv:
        [r] = gearshift.download([srv.url("/short.bin")], tmp_path, retries=2, **FAST)
    assert (r.status, r.attempts) == ("failed", 3)
    assert "retries=2 exhausted" in str(r.error)
    assert not (tmp_path / "short.bin").exists()


def test_slow_response_times_out_then_retry_succeeds(tmp_path: Path) -> None:
    replies = [Reply(body=b"late", delay=3.0), Reply(body=b"fast")]
    with FaultServer({"/slow.txt": replies, "/stuck.txt": Reply(delay=3.0)}) as srv:
        ok, stuck = gearshift.download(
            [srv.url("/slow.txt"), srv.url("/stuck.txt")],
            tmp_path,
            retries=1,
            backoff=0.01,
            timeout=(5.0, 0.3),
        )
    assert (ok.status, ok.attempts, ok.path.read_bytes()) == ("done", 2, b"fast")  # type: ignore[union-attr]
    assert (stuck.status, stuck.attempts) == ("failed", 2)
    assert "read timed out" in str(stuck.error)


def test_redirect_chain_is_followed_and_named_after_the_requested_url(tmp_path: Path) -> None:
    routes = {
        "/latest": Reply(302, headers={"Location": "/v2"}),
        "/v2": Reply(301, headers={"Location": "/files/v2-final"}),
        "/files/v2-final": Reply(body=BODY[:5000], headers=PNG),
    }
    with FaultServer(routes) as srv:
        [r] = gearshift.download([srv.url("/latest")], tmp_path)
    assert r.status == "done" and r.path == tmp_path / "latest.png"  # extension from Content-Type
    assert r.path.read_bytes() == BODY[:5000]


def test_too_many_redirects_and_non_http_targets_are_not_retried(tmp_path: Path) -> None:
    routes = {
        "/a": Reply(302, headers={"Location": "/b"}),
        "/b": Reply(302, headers={"Location": "/a"}),
        "/evil": Reply(302, headers={"Location": "file:///etc/passwd"}),
    }
    with FaultServer(routes) as srv:
        loop, evil = gearshift.download(
            [srv.url("/a"), srv.url("/evil")], tmp_path, max_redirects=3
        )
    assert (loop.status, loop.attempts) == ("failed", 1)
    assert "too many redirects" in str(loop.error)
    assert (evil.status, evil.attempts) == ("failed", 1)
    assert list(tmp_path.iterdir()) == []


def test_part_file_from_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    with FaultServer({"/data.bin": Reply(body=BODY, headers={"ETag": '"v1"'}, ranges=True)}) as srv:
        url = srv.url("/data.bin")
        (tmp_path / "data.bin.part").write_bytes(BODY[:200_000])
        (tmp_path / "data.bin.part.meta").write_text(json.dumps({"url": url, "validator": '"v1"'}))
        [r] = gearshift.download([url], tmp_path)
        assert srv.hits("/data.bin")[0]["Range"] == "bytes=200000-"
        assert srv.body_bytes_sent == len(BODY) - 200_000
    assert (r.status, r.http_status) == ("done", 206)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == []


def test_complete_part_file_from_a_crash_is_finished_without_downloading(tmp_path: Path) -> None:
    with FaultServer({"/data.bin": Reply(body=BODY, headers={"ETag": '"v1"'}, ranges=True)}) as srv:
        url = srv.url("/data.bin")
        (tmp_path / "data.bin.part").write_bytes(BODY)  # renamed never happened
        (tmp_path / "data.bin.part.meta").write_text(json.dumps({"url": url, "validator": '"v1"'}))
        [r] = gearshift.download([url], tmp_path)
        assert srv.body_bytes_sent == 0
    assert (r.status, r.http_status, r.bytes) == ("done", 416, len(BODY))
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == []


def test_part_file_of_another_version_is_downloaded_again(tmp_path: Path) -> None:
    with FaultServer({"/data.bin": Reply(body=BODY, headers={"ETag": '"v2"'}, ranges=True)}) as srv:
        url = srv.url("/data.bin")
        (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # bytes of version v1
        (tmp_path / "data.bin.part.meta").write_text(json.dumps({"url": url, "validator": '"v1"'}))
        [r] = gearshift.download([url], tmp_path)
    assert (r.status, r.http_status) == ("done", 200)  # If-Range did not match: a whole body
    assert (tmp_path / "data.bin").read_bytes() == BODY


def test_sha256_manifest_accepts_the_right_bytes_and_rejects_others(tmp_path: Path) -> None:
    good = hashlib.sha256(BODY).hexdigest()
    routes = {"/good.bin": Reply(body=BODY), "/bad.bin": Reply(body=BODY[:-1] + b"!")}
    with FaultServer(routes) as srv:
        ok, bad = gearshift.download(
            [srv.url("/good.bin"), srv.url("/bad.bin")],
            tmp_path,
            sha256={"good.bin": good, srv.url("/bad.bin"): good},
            **FAST,
        )
    assert ok.status == "done" and ok.path.read_bytes() == BODY  # type: ignore[union-attr]
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert "sha256 mismatch" in str(bad.error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.bin"]


def test_max_bytes_refuses_large_bodies_with_or_without_content_length(tmp_path: Path) -> None:
    routes = {"/big.bin": Reply(body=BODY), "/sneaky.bin": Reply(body=BODY, length=False)}
    with FaultServer(routes) as srv:
        big, sneaky = gearshift.download(
            [srv.url("/big.bin"), srv.url("/sneaky.bin")], tmp_path, max_bytes=100_000, **FAST
        )
    for r in (big, sneaky):
        assert (r.status, r.attempts) == ("failed", 1)
        assert "max_bytes=100000" in str(r.error)
    assert list(tmp_path.iterdir()) == []


def test_names_are_safe_and_unique(tmp_path: Path) -> None:
    evil = {"Content-Disposition": 'attachment; filename="../../../etc/evil.sh"'}
    routes = {
        "/a/photo.png": Reply(body=b"1"),
        "/b/photo.png": Reply(body=b"2"),
        "/cd": Reply(body=b"3", headers=evil),
        "/..%2F..%2Fescape.txt": Reply(body=b"4"),
        "/dir/": Reply(body=b"5", headers={"Content-Type": "text/html; charset=utf-8"}),
        "/cd2": Reply(body=b"6", headers=evil),  # the same proposed name as /cd
    }
    (tmp_path / "photo.png").write_bytes(b"precious")
    with FaultServer(routes) as srv:
        results = gearshift.download([srv.url(p) for p in routes], tmp_path)
    names = [r.path.name for r in results]  # type: ignore[union-attr]
    assert names[:2] + names[3:5] == ["photo-1.png", "photo-2.png", "escape.txt", "index.html"]
    assert sorted([names[2], names[5]]) == ["evil-1.sh", "evil.sh"]  # claimed as they finish
    assert {(tmp_path / n).read_bytes() for n in ("evil.sh", "evil-1.sh")} == {b"3", b"6"}
    assert (tmp_path / "photo.png").read_bytes() == b"precious"  # never overwritten
    assert all(r.path.parent == tmp_path for r in results)  # type: ignore[union-attr]


def test_skip_existing_leaves_files_alone(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"old")
    with FaultServer({"/x.bin": Reply(body=b"new")}) as srv:
        [r] = gearshift.download([srv.url("/x.bin")], tmp_path, skip_existing=True)
        assert srv.hits("/x.bin") == []
    assert (r.status, r.bytes, r.attempts) == ("skipped", 3, 0)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "/tmp/x", "http://", "http://[::1"]
)
def test_only_http_and_https_urls_are_accepted(tmp_path: Path, url: str) -> None:
    with pytest.raises(UsageError, match=r"urls\[1\].*only http and https"):
        gearshift.download(["http://127.0.0.1:1/ok", url], tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("workers", 0), ("workers", "many"), ("retries", -1), ("timeout", 0), ("per_host", 0)],
)
def test_bad_options_name_the_argument(tmp_path: Path, option: str, value: object) -> None:
    with pytest.raises(UsageError, match=f"{option}="):
        gearshift.download(["http://127.0.0.1:1/x"], tmp_path, **{option: value})  # type: ignore[arg-type]


def test_per_host_limit_and_fixed_width_bound_the_concurrency(tmp_path: Path) -> None:
    routes = {f"/{i}.bin": Reply(body=b"x", delay=0.1) for i in range(12)}
    with FaultServer(routes) as srv:
        gearshift.download([srv.url(p) for p in routes], tmp_path, workers=12, per_host=3)
        assert srv.peak_in_flight == 3
    with FaultServer(routes) as srv:
        gearshift.download([srv.url(p) for p in routes], tmp_path / "2", workers=2)
        assert srv.peak_in_flight == 2


def test_auto_width_grows_past_its_start_while_throughput_rises(tmp_path: Path) -> None:
    routes = {f"/{i}.bin": Reply(body=BODY[:20_000], delay=0.2) for i in range(96)}
    with FaultServer(routes) as srv:
        results = gearshift.download([srv.url(p) for p in routes], tmp_path)
        assert srv.peak_in_flight > AUTO_START  # the first window always doubles the width
    assert all(r.status == "done" for r in results)


def test_ctrl_c_stops_promptly_and_leaves_no_partial_file_under_a_final_name(
    tmp_path: Path,
) -> None:
    slow = Reply(body=BODY, headers={"ETag": '"v1"'}, pace=0.5)  # ~20 s for the whole body
    with FaultServer({f"/{i}.bin": slow for i in range(4)}) as srv:
        parts = [tmp_path / f"{i}.bin.part" for i in range(4)]

        def interrupt_once_bytes_arrive() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(p.exists() for p in parts):
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

        threading.Thread(target=interrupt_once_bytes_arrive).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            gearshift.download([srv.url(f"/{i}.bin") for i in range(4)], tmp_path, workers=4)
        assert time.monotonic() - t0 < 10
    assert not any(p.name.endswith(".bin") for p in tmp_path.iterdir())
    kept = [p for p in parts if p.exists()]  # kept, with their validators, to resume next run
    assert kept and all(p.with_name(p.name + ".meta").exists() for p in kept)
    assert not [t for t in threading.enumerate() if t.name.startswith("gearshift-download")]


def test_progress_bar_shows_files_bytes_and_rate_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer({"/a.bin": Reply(body=BODY), "/b.bin": Reply(body=BODY)}) as srv:
        gearshift.download([srv.url("/a.bin"), srv.url("/b.bin")], tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "600.0 kB" in err and "MB/s" in err


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An HTTPS server with a self-signed certificate (made by the openssl command)."""
    import http.server
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secret")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,))
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/s.txt"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def test_tls_is_verified_unless_insecure_which_warns(
    tls_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [r] = gearshift.download([tls_server], tmp_path / "a", **FAST)
    assert (r.status, r.attempts) == ("failed", 1)
    assert "certificate" in str(r.error) and "--insecure" in str(r.error)
    with pytest.warns(UserWarning, match="NOT verified"):
        [r] = gearshift.download([tls_server], tmp_path / "b", insecure=True)
    assert r.status == "done" and r.path.read_bytes() == b"secret"  # type: ignore[union-attr]
    assert main(["download", tls_server, "--insecure", "-o", str(tmp_path / "c"), "--json"]) == 0
    assert "warning: --insecure: TLS certificates are NOT verified" in capsys.readouterr().err


def test_cli_reads_urls_from_a_file_and_prints_a_json_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer({"/a.txt": Reply(body=b"a"), "/b.txt": Reply(404)}) as srv:
        listing = tmp_path / "urls.txt"
        listing.write_text(f"# my files\n{srv.url('/a.txt')}  # the good one\n\n")
        out = tmp_path / "out"
        assert main(["download", "-i", str(listing), "-o", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["summary"]["done"] == 1 and report["results"][0]["bytes"] == 1
        code = main(["download", srv.url("/a.txt"), srv.url("/b.txt"), "-o", str(out)])
    assert code == 1  # one URL failed
    printed = capsys.readouterr().out
    for column in ("done", "failed", "retried", "bytes", "time", "MB/s"):  # the summary table
        assert column in printed
    assert "failures" in printed and srv.url("/b.txt") in printed and "404" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a-1.txt", "a.txt"]


def test_cli_reads_stdin_and_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultServer({"/a.txt": Reply(body=b"a")}) as srv:
        monkeypatch.setattr(sys, "stdin", io.StringIO(srv.url("/a.txt") + "\n"))
        assert main(["download", "-i", "-", "-o", str(tmp_path), "--json"]) == 0
    assert (tmp_path / "a.txt").read_bytes() == b"a"
    assert main(["download", "file:///etc/passwd", "-o", str(tmp_path)]) == 2
    assert main(["download", "-o", str(tmp_path)]) == 2
    assert "no URLs given" in capsys.readouterr().err


def test_url_lists_and_manifests_are_parsed_strictly(tmp_path: Path) -> None:
    assert read_url_lines(["# c", "", " http://h/a  # note", "http://h/b"], "f") == [
        "http://h/a",
        "http://h/b",
    ]
    with pytest.raises(UsageError, match="line 1 has more than one field"):
        read_url_lines(["http://h/a http://h/b"], "f")
    assert [parse_size(t) for t in ("1048576", "512K", "10M", "2GiB")] == [
        1 << 20,
        512 << 10,
        10 << 20,
        2 << 30,
    ]
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        parse_size("1.5G")
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text(f"{'AB' * 32}  a.png\n# comment\n{'cd' * 32} *http://h/b\n")
    assert read_sha256_manifest(str(manifest)) == {"a.png": "ab" * 32, "http://h/b": "cd" * 32}
    manifest.write_text("nothex  a.png\n")
    with pytest.raises(UsageError, match="line 1 is not 'HEX  NAME'"):
        read_sha256_manifest(str(manifest))


def test_missing_urllib3_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "urllib3", None)  # `import urllib3` now raises ImportError
    with pytest.raises(gearshift.StrategyUnavailable, match=r"pip install 'gearshift\[download\]'"):
        gearshift.download(["http://127.0.0.1:1/x"], tmp_path)


def test_import_gearshift_does_not_import_the_http_client() -> None:
    code = "import gearshift, sys; gearshift.DownloadResult; print('urllib3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert gearshift.download.__module__ == "gearshift.downloader._download"


def test_part_file_is_resumed_with_last_modified_when_there_is_no_etag(tmp_path: Path) -> None:
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    reply = Reply(body=BODY, headers={"Last-Modified": stamp, "ETag": 'W/"weak"'}, ranges=True)
    with FaultServer({"/data.bin": reply}) as srv:
        url = srv.url("/data.bin")
        (tmp_path / "data.bin.part").write_bytes(BODY[:100_000])
        (tmp_path / "data.bin.part.meta").write_text(json.dumps({"url": url, "validator": stamp}))
        [r] = gearshift.download([url], tmp_path)
        [hit] = srv.hits("/data.bin")
    assert (hit["Range"], hit["If-Range"]) == ("bytes=100000-", stamp)  # never the weak ETag
    assert (r.status, r.http_status) == ("done", 206)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == []


def test_a_server_ignoring_if_range_cannot_glue_two_versions_together(tmp_path: Path) -> None:
    reply = Reply(body=BODY, headers={"ETag": '"v2"'}, ranges=True, if_range=False)
    with FaultServer({"/data.bin": reply}) as srv:
        url = srv.url("/data.bin")
        (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # bytes of version v1
        (tmp_path / "data.bin.part.meta").write_text(json.dumps({"url": url, "validator": '"v1"'}))
        [r] = gearshift.download([url], tmp_path, **FAST)
        stale, whole = srv.hits("/data.bin")
    assert stale["Range"] == "bytes=1000-" and "Range" not in whole  # v2's 206 was thrown away
    assert (r.status, r.attempts, r.http_status) == ("done", 2, 200)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == []


def test_one_pooled_client_reuses_its_connections(tmp_path: Path) -> None:
    routes = {f"/{i}.bin": Reply(body=BODY[:10_000]) for i in range(20)}
    with FaultServer(routes) as srv:
        results = gearshift.download([srv.url(p) for p in routes], tmp_path, workers=2)
        assert 1 <= srv.connections <= 2  # 20 downloads over the two workers' kept-alive sockets
    assert all(r.status == "done" for r in results)


def test_auto_width_stops_doubling_at_the_first_window_that_did_not_pay() -> None:
    meter = Meter()
    width = Width(None, 1000, meter)

    def window(files: int, nbytes: int) -> int:
        time.sleep(0.02)
        meter.add_bytes(nbytes)
        for _ in range(files):
            meter.file_done(True)
        return width.observe()

    assert width.current == AUTO_START
    assert window(AUTO_START - 1, 10**6) == AUTO_START  # a window ends after `width` files
    assert window(1, 0) == 2 * AUTO_START  # the first window always doubles
    assert window(2 * AUTO_START, 10**10) == 4 * AUTO_START  # bytes/s rose: double again
    assert window(4 * AUTO_START, 10**3) == 4 * AUTO_START  # fell: stay
    assert window(4 * AUTO_START, 10**13) == 4 * AUTO_START  # and stay for good
    assert Width(None, 40, meter).current == min(AUTO_START, 40)
    assert Width(7, 40, meter).observe() == 7  # --workers N is fixed


def test_backoff_doubles_with_jitter_and_retry_after_is_capped() -> None:
    for attempt in (1, 2, 3, 4):
        step = 0.5 * 2 ** (attempt - 1)
        waits = [backoff_delay(attempt, 0.5, 60.0) for _ in range(200)]
        assert all(step / 2 <= w <= step for w in waits)
        assert len(set(waits)) > 150  # jitter: clients that failed together spread out
    assert max(backoff_delay(20, 0.5, 3.0) for _ in range(50)) <= 3.0
    assert backoff_delay(1, 0.5, 60.0, wait=7.0) == 7.0  # Retry-After, not the backoff
    assert backoff_delay(1, 0.5, 5.0, wait=3600.0) == 5.0  # capped by max_wait
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 20 < retry_after(later) <= 30  # type: ignore[operator]
    assert (retry_after("120"), retry_after(None), retry_after("soon")) == (120.0, None, None)


def test_connection_refused_and_connect_timeout_are_retried(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/x.bin"
    with socket.socket() as full, socket.socket() as filler:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # never accepts: once one connection waits, new ones cannot connect
        filler.connect(full.getsockname())
        blackhole_url = f"http://127.0.0.1:{full.getsockname()[1]}/y.bin"
        refused, blackhole = gearshift.download(
            [refused_url, blackhole_url], tmp_path, retries=2, backoff=0.01, timeout=(0.3, 5.0)
        )
    assert (refused.status, refused.attempts, refused.http_status) == ("failed", 3, None)
    assert "cannot connect" in str(refused.error) and "retries=2 exhausted" in str(refused.error)
    assert (blackhole.status, blackhole.attempts) == ("failed", 3)
    assert "connect timed out after 0.3 s" in str(blackhole.error)
    assert list(tmp_path.iterdir()) == []


def test_a_large_file_arrives_whole_and_checked(tmp_path: Path) -> None:
    large = hashlib.shake_256(b"large").digest(24 << 20)
    manifest = {"large.bin": hashlib.sha256(large).hexdigest()}
    with FaultServer({"/large.bin": Reply(body=large, headers={"ETag": '"L"'})}) as srv:
        [r] = gearshift.download([srv.url("/large.bin")], tmp_path, sha256=manifest)
    assert (r.status, r.attempts, r.bytes) == ("done", 1, len(large))
    assert (tmp_path / "large.bin").read_bytes() == large and leftovers(tmp_path) == []


def test_a_killed_download_leaves_only_a_part_file_that_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    big = BODY * 10  # 3 MB: over 1 MiB, so its resume note is written before the body
    headers = {"ETag": '"v1"'}
    replies = [
        Reply(body=big, headers=headers, ranges=True, pace=0.05),  # ~9 s: killed long before
        Reply(body=big, headers=headers, ranges=True),
    ]
    part = tmp_path / "big.bin.part"
    with FaultServer({"/big.bin": replies}) as srv:
        url = srv.url("/big.bin")
        cmd = [sys.executable, "-m", "gearshift", "download", url, "-o", str(tmp_path), "--json"]
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (part.exists() and part.stat().st_size):
                time.sleep(0.01)
            proc.kill()  # SIGKILL: no cleanup code runs, as in a crash or a power cut
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin.part", "big.bin.part.meta"]
        kept = part.stat().st_size
        assert 0 < kept < len(big)
        [r] = gearshift.download([url], tmp_path, **FAST)
        assert srv.hits("/big.bin")[1]["Range"] == f"bytes={kept}-"
    assert (r.status, r.http_status) == ("done", 206)
    assert (tmp_path / "big.bin").read_bytes() == big and leftovers(tmp_path) == []
