#!/usr/bin/env python3
"""Regenerates crates/cal-core/src/windows_zones.rs from CLDR's windowsZones
table (territory "001" defaults) as packaged by the tzlocal PyPI release.

    python3 scripts/gen-windows-zones.py  # needs pip and PyPI
"""
import glob, importlib.util, pathlib, subprocess, sys, tempfile, zipfile

out_path = pathlib.Path(__file__).resolve().parent.parent / "crates/cal-core/src/windows_zones.rs"
with tempfile.TemporaryDirectory() as d:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", d, "tzlocal"], check=True)
    wheel = glob.glob(f"{d}/tzlocal-*.whl")[0]
    version = pathlib.Path(wheel).name.split("-")[1]
    zipfile.ZipFile(wheel).extractall(d)
    spec = importlib.util.spec_from_file_location("windows_tz", f"{d}/tzlocal/windows_tz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
lines = [
    "//! Windows time zone names → IANA zones, for Outlook's TZIDs (SEMANTICS.md §6).",
    "//!",
    "//! Generated from the Unicode CLDR table `common/supplemental/windowsZones.xml`",
    "//! (the territory \"001\" default of each Windows zone), as packaged in the",
    f"//! `tzlocal` {version} PyPI release (`tzlocal/windows_tz.py`). Regenerate with",
    "//! `scripts/gen-windows-zones.py`; do not edit by hand.",
    "",
    "/// `(windows name, IANA name)`, sorted by Windows name for binary search.",
    "pub const WINDOWS_ZONES: &[(&str, &str)] = &[",
]
lines += [f'    ("{k}", "{v}"),' for k, v in sorted(module.win_tz.items())]
lines.append("];")
out_path.write_text("\n".join(lines) + "\n")
print(f"wrote {len(module.win_tz)} zones to {out_path}")
