#!/usr/bin/env python3
"""Fails when ctest skipped a test (exit 77, SKIP_RETURN_CODE): on CI the project's scripts
install everything every test needs (scripts/test.sh), so a skip means a test that must run here
did not, and ctest would have counted it as passed. Usage: check_skips.py JUNIT.xml (written by
`ctest --output-junit`)."""
import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
skipped = [c for c in cases if c.get("status") != "run" and c.find("failure") is None]
for c in skipped:
    out = (c.findtext("system-out") or "").strip().splitlines()
    reason = next((l for l in out if "SKIP" in l.upper()), out[-1] if out else "no output")
    print(f"{sys.argv[1]}: {c.get('name')} did not run: {reason}", file=sys.stderr)
if skipped:
    print(f"{len(skipped)} test(s) skipped that must run on this machine", file=sys.stderr)
    sys.exit(1)
print(f"{sys.argv[1]}: no test skipped")
