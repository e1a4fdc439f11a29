"""Loading never imports: not the modules class names point to, not tzdata for a time zone.

Each check runs in a fresh interpreter, so that what another test imported cannot hide an
import made by decoding.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


PRELUDE = """
    import sys
    from notebook_workflows import ContextSerdeError
    from notebook_workflows.serialization import decode, decode_event

    def refused(data):
        try:
            decode(data, "v")
        except ContextSerdeError as exc:
            return str(exc)
        return None
"""


def test_hostile_zone_names_and_class_names_import_no_module() -> None:
    out = run_fresh(
        PRELUDE
        + """
    zones = ["America", "Europe", "America/", "tzdata", "zoneinfo", "../../../etc/passwd",
             "/etc/localtime", "zone.tab", "tzdata.zi", "Nowhere/Land", "a" * 200, "",
             "America/New_York/extra", "__init__", "America/__init__", "Etc", "Europe/../UTC"]
    names = ["tzdata.zoneinfo.America:X", "antigravity:Fly", "this:Zen", "xml.dom.minidom:Node"]
    before = set(sys.modules)
    messages = []
    for key in zones:
        for tag in ("$datetime", "$time"):
            text = "2024-05-01T09:30:00" if tag == "$datetime" else "09:30:00"
            messages.append(refused({"when": {tag: text, "tz": key}}))
    for name in names:
        messages.append(refused({"$model": name, "fields": {}}))
        try:
            decode_event({"type": name, "data": {}})
        except ContextSerdeError:
            pass
    print(sorted(set(sys.modules) - before))
    print(sum(m is not None for m in messages), len(messages))
    print(messages[0])
    """
    )
    new_modules, counts, first = out.splitlines()
    assert new_modules == "[]"
    refused_count, total = map(int, counts.split())
    assert refused_count == total
    assert first.startswith("cannot load v.when: malformed $datetime tag: unknown time zone")


def test_known_zones_load_from_the_system_database_as_the_shared_zoneinfo() -> None:
    out = run_fresh(
        PRELUDE
        + """
    from zoneinfo import ZoneInfo
    before = set(sys.modules)
    value = decode({"$datetime": "2024-07-01T12:00:00+02:00", "tz": "Europe/Paris"})
    print(sorted(set(sys.modules) - before))
    print(value.tzinfo is ZoneInfo("Europe/Paris"), value.utcoffset())
    """
    )
    assert out.splitlines() == ["[]", "True 2:00:00"]


def test_without_a_system_database_zones_are_read_from_tzdata_files_without_importing() -> None:
    out = run_fresh(
        PRELUDE
        + """
    import zoneinfo
    zoneinfo.reset_tzpath([])  # as on Windows: tzdata is the only source
    before = set(sys.modules)
    value = decode({"$datetime": "2024-01-15T09:00:00+09:00", "tz": "Asia/Tokyo"})
    again = decode({"$time": "09:00:00", "tz": "Asia/Tokyo"})
    print(sorted(set(sys.modules) - before))
    print(value.tzinfo.key, value.utcoffset(), again.tzinfo is value.tzinfo)
    print(refused({"$datetime": "2024-01-01T00:00:00", "tz": "Asia"}) is not None)
    """
    )
    assert out.splitlines() == ["[]", "Asia/Tokyo 9:00:00 True", "True"]
