#!/usr/bin/env python3
"""Count test results across meson testlog.json files and print the final
`N passed, N failed, N skipped` line.

A TAP test counts each of its subtests ("ok", "not ok", "# SKIP"); a
plain test counts once (exit 77 = skipped).  A TAP test that died before
printing its plan or printed fewer results than planned counts its
missing results as failed, so a crash never shrinks the failure count.
"""
import json
import re
import sys

TAP_LINE = re.compile(r'^(not ok|ok)\b[^#]*(#\s*(SKIP|TODO)\b.*)?', re.I)
PLAN = re.compile(r'^1\.\.(\d+)')


def count_tap(text):
    passed = failed = skipped = 0
    planned = None
    for line in text.splitlines():
        m = PLAN.match(line)
        if m:
            planned = int(m.group(1))
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        directive = (m.group(3) or '').upper()
        if directive == 'SKIP':
            skipped += 1
        elif m.group(1).lower() == 'ok' or directive == 'TODO':
            passed += 1
        else:
            failed += 1
    seen = passed + failed + skipped
    if planned is None and seen == 0:
        failed += 1
    elif planned is not None and seen < planned:
        failed += planned - seen
    return passed, failed, skipped


def main(args):
    details = '--details' in args
    paths = [a for a in args if a != '--details']
    totals = [0, 0, 0]
    failures = []
    for path in paths:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for raw in lines:
            entry = json.loads(raw)
            out = entry.get('stdout') or ''
            if PLAN.search(out) or TAP_LINE.search(out) or 'TAP version' in out:
                p, f, s = count_tap(out)
                # A TAP test whose process failed with all subtests passing
                # (a crash after the last line, a leak report) still fails.
                if f == 0 and entry['result'] in ('FAIL', 'TIMEOUT', 'ERROR'):
                    f = 1
            elif entry['result'] == 'SKIP':
                p, f, s = 0, 0, 1
            elif entry['result'] in ('OK', 'EXPECTEDFAIL'):
                p, f, s = 1, 0, 0
            else:
                p, f, s = 0, 1, 0
            if f:
                failures.append(entry['name'])
            if details:
                print(f"{entry['name']:<40} {entry['result']:<8} "
                      f"{p} passed, {f} failed, {s} skipped ({entry['duration']:.1f}s)")
                if f:
                    for line in out.splitlines():
                        if line.startswith(('not ok', '#')):
                            print('    ' + line)
            totals[0] += p
            totals[1] += f
            totals[2] += s
    if failures:
        print('failed tests: ' + ', '.join(failures))
    line = f'{totals[0]} passed, {totals[1]} failed'
    if totals[2]:
        line += f', {totals[2]} skipped'
    print(line)
    return 1 if totals[1] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
