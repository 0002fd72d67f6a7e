#!/usr/bin/env python3
"""Counts test cases (not Bazel targets) in the JUnit XML that `bazel test` leaves in bazel-testlogs.

Usage: test_summary.py [--junit FILE]... TESTLOGS_DIR TARGET...
Prints the failed cases, then one closing line "N passed, N failed". A target without XML (it did
not build or was not run) counts as one failed case. Each --junit FILE is one more JUnit XML file
of tests run outside Bazel (the consumer tests, tests/consumer/run.sh), counted the same way; a
missing or unreadable file counts as one failed case.
"""
import os
import sys
import xml.etree.ElementTree as ET


def xml_path(testlogs, target):
    package, _, name = target.lstrip("/").partition(":")
    return os.path.join(testlogs, package, name, "test.xml")


def main(argv):
    args = argv[1:]
    extra = []
    while len(args) >= 2 and args[0] == "--junit":
        extra.append(args[1])
        args = args[2:]
    testlogs, targets = args[0], args[1:]
    passed = failed = 0
    failures = []
    sources = [(target, xml_path(testlogs, target)) for target in targets]
    sources += [(path, path) for path in extra]
    for target, path in sources:
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
