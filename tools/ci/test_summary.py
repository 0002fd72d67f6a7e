#!/usr/bin/env python3
"""Counts test cases (not Bazel targets) in the JUnit XML that `bazel test` leaves in bazel-testlogs.

Usage: test_summary.py TESTLOGS_DIR TARGET...
Prints the failed cases, then one closing line "N passed, N failed". A target without XML (it did
not build or was not run) counts as one failed case.
"""
import os
import sys
import xml.etree.ElementTree as ET


def xml_path(testlogs, target):
    package, _, name = target.lstrip("/").partition(":")
    return os.path.join(testlogs, package, name, "test.xml")


def main(argv):
    testlogs, targets = argv[1], argv[2:]
    passed = failed = 0
    failures = []
    for target in targets:
        path = xml_path(testlogs, target)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as error:
            failed += 1
            failures.append(f"{target}: no test results ({error.__class__.__name__})")
            continue
        cases = list(root.iter("testcase"))
        for case in cases:
            if case.get("status") == "notrun" or case.find("skipped") is not None:
                continue
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(f"{target}: {case.get('classname', '')}.{case.get('name', '')}")
            else:
                passed += 1
    for line in failures:
        print("FAILED " + line)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
