"""--html: one self-contained page per report, read as text and rendered in a real headless browser
(Debian's Chromium, where installed: .ci/run installs it)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from html import unescape
from pathlib import Path

import pytest

from actexport.bench import StoppingRule, bench
from actexport.cli import main
from actexport.report import Cell, Report
from actexport.status import Status

CHROMIUM = Path("/usr/bin/chromium")
FAST = StoppingRule(warmup_calls=1, warmup_s=0.0, min_samples=5, min_s=0.0, min_step=3, max_s=0.02)
# A reference that makes the browser fetch something: an attribute, or CSS
FETCHES = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(""", re.I)

# Recorded in the DOM, so --dump-dom reads back what the page did: script errors, resources that failed
# to load (capture phase), and every resource fetched at all (a data: URI is not one).
PROBE_HEAD = ('<script>window.__errors=[];addEventListener("error",function(e){window.__errors.push('
              'String(e.message||(e.target&&(e.target.src||e.target.href))))},true);</script>')
PROBE_TAIL = ('<script>addEventListener("load",function(){document.body.setAttribute("data-probe",JSON.stringify('
              '{errors:window.__errors,resources:performance.getEntriesByType("resource").map(function(e){'
              'return e.name})}))});</script>')


@pytest.fixture(scope="module")
def page(full_report, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "verify.html"
    full_report.write_html(path)
    return path


def test_the_page_is_self_contained_small_and_has_every_cell(page, full_report):
    text = page.read_text(encoding="utf-8")
    assert not FETCHES.search(text), FETCHES.search(text)
    assert page.stat().st_size < 1_000_000  # verify --all, float32
    for i, c in enumerate(full_report.cells):
        assert f'id="c{i}"' in text and f'href="#c{i}"' in text, c.key
    (sig,) = [c for c in full_report.cells if c.activation == "sigmoid" and c.runtime == "ort:cpu"]
    i = full_report.cells.index(sig)
    details = unescape(text.split(f'id="c{i}"', 1)[1].split("</details>", 1)[0])
    assert sig.status == Status.XFAIL and sig.reason in details
    assert f"side at fault: {sig.deviates}" in details
    for v in (sig.worst_input, sig.worst_expected, sig.worst_actual, sig.worst_torch):
        assert repr(v) in details
    assert "ONNX graph (float32, opset 18)" in details and "Sigmoid" in details


def test_a_models_cells_show_each_output_and_where_the_deviation_starts(tmp_path):
    outputs = [{"name": "logits", "elements": 30, "scale": 0.54, "ulp_at_scale": 40.5, "budget_ulp": 16},
               {"name": "hidden", "elements": 256, "scale": 2.9, "ulp_at_scale": 2.0, "budget_ulp": 16}]
    cell = Cell("my.model", "my.model:factory", "onnx", "ort:cpu", "float32", Status.FAIL, reason="logits over budget",
                outputs=outputs, origin={"module_path": "encoder.layer0", "op": "aten.gelu", "local_max_ulp": 40})
    path = tmp_path / "model.html"
    Report(cells=[cell]).write_html(path)
    text = unescape(path.read_text(encoding="utf-8"))
    assert "each output judged at its scale" in text and "max ULP at scale" in text
    assert "logits" in text and "40.5" in text and "hidden" in text
    assert "encoder.layer0" in text and "aten.gelu" in text


def test_verify_check_and_bench_write_the_page(tmp_path, capsys):
    verify_page, bench_page = tmp_path / "v.html", tmp_path / "b.html"
    assert main(["verify", "relu", "--formats", "onnx", "--quiet", "--html", str(verify_page)]) == 0
    assert "relu / onnx@18 / ort:cpu / float32" in verify_page.read_text(encoding="utf-8")
    assert main(["export", "relu", "--formats", "onnx", "--out", str(tmp_path / "models")]) == 0
    check_page = tmp_path / "c.html"
    assert main(["check", str(tmp_path / "models"), "--quiet", "--html", str(check_page)]) == 0
    assert "relu / onnx@18 / ort:cpu / float32" in check_page.read_text(encoding="utf-8")
    assert main(["bench", "relu", "--formats", "onnx", "--sizes", "1e3", "--html", str(bench_page)]) == 0
    text = bench_page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text and "ort:cpu" in text and not FETCHES.search(text)


def test_verify_latency_is_on_the_page(full_report, tmp_path):
    timed = bench(["relu"], formats=("onnx",), providers=("cpu",), sizes=(1000,), rule=FAST, dram_bytes=1 << 20)
    path = tmp_path / "latency.html"
    Report(cells=full_report.cells[:5], latency=[timed]).write_html(path)
    text = path.read_text(encoding="utf-8")
    assert "latency: float32" in text and "data:image/png;base64," in text and "geometric mean" in text


@pytest.mark.parametrize("argv", [["verify", "relu"], ["check", "models"], ["bench", "relu"]])
def test_html_without_jinja2_is_one_usage_line_naming_the_extra(monkeypatch, tmp_path, capsys, argv):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jinja2" else real(name, *a))
    assert main([*argv, "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["actexport: error: --html needs jinja2: pip install 'actexport[html]'"]


def test_html_to_a_missing_directory_is_refused_before_work(tmp_path, capsys):
    assert main(["verify", "relu", "--html", str(tmp_path / "no" / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--html" in err[0]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Chromium at /usr/bin/chromium: apt-get install chromium")
    return CHROMIUM


def _chromium(profile: Path, url: str, *flags: str) -> subprocess.CompletedProcess:
    # Headless and offline: nothing of Chromium's own (updates, sync, field trials) reaches the network.
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *flags, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_the_browser_renders_the_matrix(chromium, page, tmp_path):
    shot = tmp_path / "page.png"
    run = _chromium(tmp_path / "profile", page.as_uri(), f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.is_file(), run.stderr[-2000:]
    from matplotlib.image import imread

    pixels = (imread(shot)[:, :, :3] * 255).astype(int)  # rows x columns x RGB
    top = pixels[120:700, :900]  # the title, then the float32 matrix
    assert (top.min(axis=2) < 235).mean() > 0.1, "the matrix region is blank"
    r, g, b = top[..., 0], top[..., 1], top[..., 2]
    # both hues of the catalog's matrix: passes (green) and declared deviations (orange)
    assert ((g > r + 20) & (g > b + 20)).sum() > 2000, "no green (pass) cells"
    assert ((r > g + 40) & (r > b + 80)).sum() > 2000, "no orange (xfail) cells"
    assert len({tuple(p) for p in top.reshape(-1, 3)[::7].tolist()}) > 20


def test_the_browser_runs_the_page_without_errors_or_fetches(chromium, page, tmp_path):
    probed = tmp_path / "probed.html"
    text = page.read_text(encoding="utf-8")
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>"),
                      encoding="utf-8")
    run = _chromium(tmp_path / "profile", probed.as_uri() + "#c2", "--dump-dom", "--virtual-time-budget=5000")
    assert run.returncode == 0, run.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', run.stdout)
    assert found, "the page's load event never ran"
    probe = json.loads(unescape(found.group(1)))
    assert probe == {"errors": [], "resources": []}
    assert not re.findall(r".*(?:CONSOLE|Uncaught).*", run.stderr)
    # the page's own script: a link to a cell opens that cell's details
    assert re.search(r'<details class="cell" id="c2" open', run.stdout)
