#!/usr/bin/env python3
"""Fails when ctest skipped a test (exit 77, SKIP_RETURN_CODE): on CI the project's scripts
install everything every test needs (scripts/test.sh), so a skip means a test that must run here
did not, and ctest would have counted it as passed. Usage: check_skips.py JUNIT.xml (written by
`ctest --output-junit`)."""
import sys
import xml.etree.ElementTree as ET

# Skips no install can cure: the bf16 tests need a CPU with AVX512-BF16 or AMX (libssl's
# message when oneDNN reports neither); a missing oneDNN is not among them (setup.sh installs it).
HARDWARE = ("CPU has neither AVX512-BF16 nor AMX",)

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
skipped = [c for c in cases if c.get("status") != "run" and c.find("failure") is None]
allowed = []
for c in skipped:
    out = (c.findtext("system-out") or "").strip().splitlines()
    reason = next((l for l in out if "SKIP" in l.upper()), out[-1] if out else "no output")
    if any(h in l for l in out for h in HARDWARE):
        allowed.append(c)
        print(f"{sys.argv[1]}: {c.get('name')} skipped on this CPU: {reason}")
        continue
    print(f"{sys.argv[1]}: {c.get('name')} did not run: {reason}", file=sys.stderr)
skipped = [c for c in skipped if c not in allowed]
if skipped:
    print(f"{len(skipped)} test(s) skipped that must run on this machine", file=sys.stderr)
    sys.exit(1)
print(f"{sys.argv[1]}: no test skipped" +
      (f" but the {len(allowed)} this CPU cannot run" if allowed else ""))
