"""GpuMonitor (gpu/common/gpu_monitor.py): parsing nvidia-smi's samples, the summary, and the
whole start/stop cycle against a stand-in nvidia-smi (a shell script), on the CPU."""

from __future__ import annotations

import os
import stat
import time

import pytest

from gpu.common.gpu_monitor import GpuMonitor, parse_samples, summarize

LINES = """1980, 3201, 612.40, 51, 0x0000000000000000
1755, 3201, 699.95, 58, 0x0000000000000004
1980, 3201, [N/A], 52, 0x0000000000000000
1980, 32"""


def test_parse_places_samples_and_skips_partial_lines():
    s = parse_samples(LINES, 5, start_s=10.0, period_s=0.5)
    assert len(s) == 3  # the cut last line is dropped
    assert [x.t_s for x in s] == [10.0, 10.5, 11.0]
    assert s[1].sm_clock_mhz == 1755 and s[1].power_w == pytest.approx(699.95)
    assert s[2].power_w is None  # "[N/A]"
    assert s[1].event_reasons == "0x0000000000000004"


def test_summary_statistics_and_reasons():
    doc = summarize(parse_samples(LINES, 5, 0.0, 0.5))
    assert doc["samples"] == 3
    assert doc["sm_clock_mhz"]["min"] == 1755 and doc["sm_clock_mhz"]["max"] == 1980
    assert doc["sm_clock_mhz"]["median"] == 1980
    assert doc["power_w"]["max"] == pytest.approx(699.95)  # N/A left out
    assert doc["event_reasons"] == {"0x0000000000000000": 2, "0x0000000000000004": 1}


def test_four_field_lines_from_older_drivers():
    s = parse_samples("1410, 2619, 300.0, 40\n", 4, 0.0, 1.0)
    assert s[0].event_reasons is None and s[0].temperature_c == 40


def test_missing_binary_is_recorded_not_raised():
    mon = GpuMonitor(binary="no-such-nvidia-smi-here")
    with mon:
        pass
    assert mon.summary() == {"available": False, "reason": "no-such-nvidia-smi-here not found"}


def _fake_smi(tmp_path, fail_on_event_field: bool):
    """A stand-in for nvidia-smi: one line per query; with -f and -lms, writes a line every
    period to the file until killed. Optionally rejects the clocks_event_reasons field."""
    script = tmp_path / "fake-smi"
    reject = ('case "$*" in *clocks_event_reasons*) echo "Field not valid" >&2; exit 2;; esac'
              if fail_on_event_field else "")
    script.write_text(f"""#!/bin/sh
{reject}
line="1980, 3201, 650.5, 55"
case "$*" in *clocks_event_reasons*) line="$line, 0x0000000000000000";; esac
file=""
loop=""
for a in "$@"; do
  case "$a" in -lms=*) loop=1;; esac
  if [ "$prev" = "-f" ]; then file="$a"; fi
  prev="$a"
done
if [ -z "$loop" ]; then echo "$line"; exit 0; fi
while true; do echo "$line" >> "$file"; sleep 0.05; done
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="needs /bin/sh")
@pytest.mark.parametrize("old_driver", [False, True])
def test_start_stop_with_a_stand_in(tmp_path, old_driver):
    mon = GpuMonitor(period_ms=50, binary=_fake_smi(tmp_path, old_driver))
    t0 = time.perf_counter()
    with mon:
        time.sleep(0.4)
    doc = mon.summary(t0)
    assert doc["available"] is True
    assert doc["samples"] >= 2
    assert doc["sm_clock_mhz"]["median"] == 1980
    assert ("event_reasons" in doc) is (not old_driver)
    ts = doc["series"]["t_s"]
    assert ts == sorted(ts) and ts[0] >= 0
    assert len(doc["series"]["power_w"]) == doc["samples"]
    assert mon.path is None  # the temporary file is gone
