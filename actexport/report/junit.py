"""A verify report as JUnit XML: one testcase per cell, fail and xpass as failures, error as an error,
skip, unavailable and xfail as skipped."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from actexport.files import atomic_write
from actexport.status import Status


def write(report, path: Path) -> None:
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name="actexport.verify",
        tests=str(len(report.cells)),
        failures=str(counts["fail"] + counts["xpass"]),
        errors=str(counts["error"]),
        skipped=str(counts["skip"] + counts["unavailable"] + counts["xfail"]),
        time=f"{report.wall_seconds:.3f}",
    )
    for c in report.cells:
        case = ET.SubElement(
            suite, "testcase", classname=f"actexport.{c.activation}",
            name=f"{c.format}/{c.runtime}/{c.dtype}", time=f"{c.seconds:.3f}",
        )
        if c.status in (Status.FAIL, Status.XPASS):
            ET.SubElement(case, "failure", message=f"{c.status}: {c.reason}"[:1000]).text = c.reason
        elif c.status == Status.ERROR:
            ET.SubElement(case, "error", message=c.reason[:1000]).text = c.log or c.reason
        elif c.status in (Status.SKIP, Status.UNAVAILABLE, Status.XFAIL):
            ET.SubElement(case, "skipped", message=f"{c.status}: {c.reason}"[:1000])
    root = ET.Element("testsuites")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    atomic_write(Path(path), lambda tmp: tree.write(tmp, encoding="utf-8", xml_declaration=True))
